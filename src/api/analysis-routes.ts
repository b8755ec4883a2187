import express from 'express';
import type { Analysis } from '../analysis/types.js';
import { onlyKnownQuery } from './query.js';

export interface AnalysisSource {
  hosts: readonly string[];
  analysis(host?: string): Analysis;
}

/** GET /analysis[?host=NAME] (read scope): what `switchyard why` prints. */
export function analysisRouter(source: AnalysisSource): express.Router {
  const router = express.Router();
  router.get('/analysis', (request, response) => {
    if (!onlyKnownQuery(request, response, ['host'])) return;
    const host = request.query.host;
    if (host !== undefined && typeof host !== 'string') {
      // ?host[]=x or ?host=a&host=b: refused rather than read as "no filter".
      response.status(400).json({ error: 'malformed', detail: 'host must be one host name' });
      return;
    }
    if (host !== undefined && !source.hosts.includes(host)) {
      response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
      return;
    }
    response.json(source.analysis(host));
  });
  return router;
}
