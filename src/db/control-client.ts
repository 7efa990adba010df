import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type ControlClient = PrismaClient;

export function createControlClient(connectionString: string): ControlClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: 10 }) });
}
