/** A service's class: what the GraphQL layer asks the registry for. */
export type ServiceClass<T> = abstract new (...args: never[]) => T;

/**
 * The services the composition root built, by class, for the GraphQL layer: a resolver asks
 * for the service it calls (`ctx.services.get(QuotaService)`), so the GraphQL layer needs
 * no list of modules and no module needs to know the others' resolvers. Nothing else looks
 * services up: services name what they use as constructor parameters.
 */
export class ServiceRegistry {
  private readonly byClass = new Map<unknown, unknown>();

  /** Each service is found by the class that built it. */
  constructor(services: readonly object[]) {
    for (const service of services) this.byClass.set(service.constructor, service);
  }

  get<T>(cls: ServiceClass<T>): T {
    const instance = this.byClass.get(cls);
    if (instance === undefined) throw new Error(`no ${cls.name} was registered`);
    return instance as T;
  }
}
