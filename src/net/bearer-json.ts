/** The request options of a JSON call with a bearer token (CLI to daemon, manager to agent). */
export function bearerJsonInit(method: string, token: string, body: unknown, timeoutMs: number) {
  return {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  };
}
