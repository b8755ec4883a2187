import { fetch as undiciFetch } from 'undici';
import type { TlsDispatcher } from '../net/tls.js';

/** The lease's agent-to-agent contact: authenticated with the agent token every host shares. */
export async function pingAgent(
  url: string,
  from: string,
  token: string,
  timeoutMs: number,
  tls?: TlsDispatcher,
): Promise<void> {
  const target = `${url.replace(/\/+$/, '')}/api/v1/lease/ping`;
  const init = {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from }),
    signal: AbortSignal.timeout(timeoutMs),
  };
  const response =
    tls && target.startsWith('https:')
      ? await undiciFetch(target, { ...init, dispatcher: tls.get() })
      : await fetch(target, init);
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
