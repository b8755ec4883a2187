import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Response } from 'express';
import { createGzip } from 'node:zlib';
import { tokenMatches } from '../../api/auth.js';
import { BACKUP_META, type BackupInfo } from '../../backup/backup.js';
import type { Logger } from '../../log.js';
import { clientArguments, directorySize, type LocalServer } from '../../snapshot/command.js';
import type { SnapshotInfo, SnapshotMethod } from '../../snapshot/types.js';
import { ByteCounter, spawnProgram, Throttle } from '../../transfer/stream-tools.js';

/** How long a target has to start pulling an offered copy; the token works once. */
const OFFER_TTL_MS = 120_000;

/** Wrong stream tokens answered 401 per window; past it, 429 until the window moves on. */
const WRONG_TOKEN_BUDGET = 10;
const WRONG_TOKEN_WINDOW_MS = 10_000;

export type StreamFormat = 'mbstream' | 'mariabackup-tar' | 'tar';

export interface Offer {
  id: string;
  token: string;
  expiresAt: number;
  rateLimit?: number;
  format: StreamFormat;
  estimatedBytes: number;
  /** A backup kept on this agent (snapshot.backup_dir) to send instead of the live datadir. */
  backup?: BackupInfo;
}

export interface SourceSettings {
  datadir: string;
  method: 'mariabackup' | 'btrfs' | 'lvm';
  server: LocalServer;
  /** btrfs/lvm: the snapshot taken under the brief read lock that is then streamed. */
  snapshotMethod?: SnapshotMethod;
  log: Logger;
}

/**
 * The sending half of a transfer. The manager asks for an offer (bearer token); the target agent
 * then pulls the stream once with the offer's one-time token. A hot mariabackup (mbstream) or,
 * for btrfs/lvm, a tar of a snapshot taken under the read lock, gzip-compressed, optionally
 * rate-limited. The manager never carries the data.
 */
export class TransferSource {
  private readonly offers = new Map<string, Offer>();
  /** When each recent wrong token arrived (at most WRONG_TOKEN_BUDGET kept). */
  private readonly wrongTokens: number[] = [];
  /** Offers of stored backups being streamed now (claimed, so no longer in `offers`). */
  private readonly streaming = new Set<Offer>();

  constructor(private readonly settings: SourceSettings) {}

  async offer(id: string, rateLimit: number | undefined, backup?: BackupInfo): Promise<Offer> {
    for (const [key, offer] of this.offers)
      if (offer.expiresAt < Date.now()) this.offers.delete(key);
    // A stored backup goes as a tar: unprepared mariabackup (the target prepares it) or a snapshot.
    const format: StreamFormat = backup
      ? backup.format === 'snapshot'
        ? 'tar'
        : 'mariabackup-tar'
      : this.settings.method === 'mariabackup'
        ? 'mbstream'
        : 'tar';
    const offer: Offer = {
      id,
      token: randomBytes(24).toString('hex'),
      expiresAt: Date.now() + OFFER_TTL_MS,
      rateLimit,
      format,
      estimatedBytes: backup ? backup.sizeBytes : await directorySize(this.settings.datadir),
      ...(backup ? { backup } : {}),
    };
    this.offers.set(id, offer);
    return offer;
  }

  /**
   * Paths of stored backups an open offer will send or a stream is sending: retention and the
   * delete route leave them alone.
   */
  storedBackupsInUse(): Set<string> {
    const now = Date.now();
    const paths = new Set<string>();
    for (const offer of [...this.offers.values(), ...this.streaming])
      if (offer.backup && (this.streaming.has(offer) || offer.expiresAt >= now))
        paths.add(offer.backup.path);
    return paths;
  }

  /**
   * Takes the offer if `token` is its one-time token; the offer is gone afterwards. A wrong token
   * leaves the offer as it was: the stream route needs no bearer token, so anyone who can reach
   * the agent could otherwise cancel a transfer by guessing its id. Answers "limited" once more
   * than WRONG_TOKEN_BUDGET wrong tokens arrived within WRONG_TOKEN_WINDOW_MS (the right token is
   * never limited).
   */
  claim(id: string, token: string): Offer | 'refused' | 'limited' {
    const offer = this.offers.get(id);
    if (offer && offer.expiresAt < Date.now()) this.offers.delete(id);
    else if (offer && tokenMatches(token, offer.token)) {
      this.offers.delete(id);
      return offer;
    }
    const now = Date.now();
    while (
      this.wrongTokens.length > 0 &&
      (this.wrongTokens[0] as number) <= now - WRONG_TOKEN_WINDOW_MS
    )
      this.wrongTokens.shift();
    if (this.wrongTokens.length >= WRONG_TOKEN_BUDGET) return 'limited';
    this.wrongTokens.push(now);
    return 'refused';
  }

  /**
   * Streams the copy into `response`. A failure of the producer destroys the response, so the
   * target sees a cut stream (and a gzip that does not end) rather than a short copy.
   */
  async stream(offer: Offer, response: Response): Promise<void> {
    const log = this.settings.log;
    let snapshot: SnapshotInfo | undefined;
    const scratch = mkdtempSync(join(dirname(this.settings.datadir), '.switchyard-send-'));
    let cleanupClient = () => undefined as void;
    this.streaming.add(offer);
    try {
      let program: { file: string; args: string[] };
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'x-switchyard-format': offer.format,
        'x-switchyard-estimated-bytes': String(offer.estimatedBytes),
      };
      if (offer.backup) {
        if (offer.backup.format === 'snapshot')
          headers['x-switchyard-gtid'] = offer.backup.gtidPosition;
        program = {
          file: 'tar',
          args: ['-C', offer.backup.path, `--exclude=./${BACKUP_META}`, '-cf', '-', '.'],
        };
      } else if (offer.format === 'mbstream') {
        const client = clientArguments(this.settings.server);
        cleanupClient = client.cleanup;
        program = {
          file: 'mariadb-backup',
          args: [
            ...client.args,
            '--backup',
            '--stream=mbstream',
            `--datadir=${this.settings.datadir}`,
            `--target-dir=${scratch}`,
          ],
        };
      } else {
        if (!this.settings.snapshotMethod)
          throw new Error(`snapshot method ${this.settings.method} is not available in this agent`);
        snapshot = await this.settings.snapshotMethod.take({ id: `transfer-${offer.id}` });
        if (!snapshot.gtidPosition) throw new Error(`snapshot ${snapshot.id} has no GTID position`);
        headers['x-switchyard-gtid'] = snapshot.gtidPosition;
        program = { file: 'tar', args: ['-C', snapshot.path, '-cf', '-', '.'] };
      }
      response.writeHead(200, headers);
      const { child, done } = spawnProgram(program.file, program.args, 'ignore');
      const gzip = createGzip({ level: 1, chunkSize: 256 * 1024 });
      const counter = new ByteCounter();
      let tail: NodeJS.ReadableStream = child.stdout!.pipe(gzip).pipe(counter);
      if (offer.rateLimit) tail = tail.pipe(new Throttle(offer.rateLimit));
      tail.pipe(response, { end: false });
      const abort = () => child.kill('SIGTERM');
      response.once('close', abort);
      try {
        await done;
        await finished(tail as NodeJS.ReadableStream & NodeJS.EventEmitter);
      } catch (error) {
        log.error(
          { event: 'transfer.send_failed', id: offer.id, error: (error as Error).message },
          'sending the copy failed; cutting the stream',
        );
        response.destroy(error as Error);
        return;
      } finally {
        response.off('close', abort);
      }
      response.end();
      log.info(
        { event: 'transfer.sent', id: offer.id, format: offer.format, wireBytes: counter.bytes },
        'copy sent',
      );
    } finally {
      this.streaming.delete(offer);
      cleanupClient();
      rmSync(scratch, { recursive: true, force: true });
      if (snapshot) await this.settings.snapshotMethod?.remove(snapshot).catch(() => undefined);
    }
  }
}
