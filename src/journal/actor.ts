import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who caused the journal entries written while a request is handled: the API token's name.
 * It travels with the request's async context (the engine's lock chains promises, which keep
 * it), so the engine does not have to pass it along and the monitor loop's entries carry none.
 */
const storage = new AsyncLocalStorage<string>();

export function runAs<T>(actor: string, work: () => T): T {
  return storage.run(actor, work);
}

export function currentActor(): string | undefined {
  return storage.getStore();
}
