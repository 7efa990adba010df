/**
 * Named points in the service where a test may step in: to pause there, fail there, or let a
 * process be killed there (the crash tests). Production code names the point and says which
 * tenant it concerns; it never holds a test object. Inert until a test sets an action: with
 * none set, `hit` is a map lookup on an empty map.
 *
 * The points (each module's are listed in its own code, searched by `failpoints.hit('`):
 *   provision.before:<STEP>, provision.after:<STEP>   around each provisioning step
 *   quota.recorded, quota.applied, rotation.recorded, suspend.recorded, resume.recorded,
 *   deprovision.recorded, deprovision.dropped, upgrade.step:<version>, extensions.<name>
 *                                                   step boundaries of changes under a tenant's lock
 *   operation.item                                   before a fleet operation runs one tenant
 *   move.started                                      a move's row committed (RUNNING), its run not yet launched
 *   move.after:<STEP>                                 a move's step done on the servers, not yet recorded (and after COMMITTED, CLEANUP)
 *   move.copying, move.cutover:paused, move.cutover:wait   in the initial copy's loop; the cutover with logins stopped;
 *                                                   each look for the last change to arrive (a test holds it past the timeout)
 *   move.cutover:committed                            the cutover's commit answered (a test throws here: an answer lost after the commit)
 *   auth.before                                      before every authentication
 *   live-read                                        inside a live read, holding its slot (detail: extensions | connections)
 *   pooler.before-restart                            before a PgBouncer that exited is restarted
 */
export interface FailpointContext {
  tenantSlug?: string;
  /** Anything else the point knows that a test may want (a step, an operation kind, what a live read reads). */
  detail?: string;
  clusterId?: string;
  database?: string;
}

/** What a test does at a point; `point` is the name that was hit (useful under a `*` prefix). */
export type FailpointAction = (context: FailpointContext & { point: string }) => void | Promise<void>;

export class Failpoints {
  /** By name; a name ending in `*` covers every point starting with the rest. */
  private readonly actions = new Map<string, FailpointAction>();

  /** Production code: a point was reached. Runs the action a test set for it (which may throw or wait). */
  async hit(name: string, context: FailpointContext = {}): Promise<void> {
    if (this.actions.size === 0) return;
    const action = this.actions.get(name) ?? [...this.actions].find(([key]) => key.endsWith('*') && name.startsWith(key.slice(0, -1)))?.[1];
    if (action) await action({ ...context, point: name });
  }

  /** Tests: what happens at `name`; a name ending in `*` covers every point starting with the rest. */
  set(name: string, action: FailpointAction): this {
    this.actions.set(name, action);
    return this;
  }
}
