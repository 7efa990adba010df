// The floor for `{ __typename }`: a bare graphql-yoga server (no plugins, no auth, no database)
// on node:http, in a process of its own as Tenantry is. Prints its URL when listening.
import { createServer } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { hello: String }' }), logging: false, graphiql: false });
const server = createServer(yoga);
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`http://127.0.0.1:${address.port}/graphql\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
