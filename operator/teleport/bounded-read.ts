// Reading a credential file without trusting it: only a regular file (a FIFO would block for ever,
// /dev/zero would never end), at most `maxBytes` (an identity is a few KB; junk after it must not
// cost hundreds of MB), and within `timeoutMs` (a hung network mount must not wedge start-up).
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** Identity files, keys and CA bundles are a few KB; 1 MB leaves room for large CA bundles. */
export const CREDENTIAL_MAX_BYTES = 1024 * 1024;
export const CREDENTIAL_READ_TIMEOUT_MS = 10_000;

export class BoundedReadError extends Error {
  constructor(
    readonly code: 'not-regular' | 'too-large' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'BoundedReadError';
  }
}

export async function readBoundedText(
  path: string,
  opts: { maxBytes?: number; timeoutMs?: number } = {},
): Promise<string> {
  const maxBytes = opts.maxBytes ?? CREDENTIAL_MAX_BYTES;
  const timeoutMs = opts.timeoutMs ?? CREDENTIAL_READ_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BoundedReadError('timeout', `reading it took longer than ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([readChecked(path, maxBytes), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readChecked(path: string, maxBytes: number): Promise<string> {
  const info = await stat(path);
  if (!info.isFile()) {
    throw new BoundedReadError(
      'not-regular',
      `is not a regular file (${kindOf(info)}); point it at the file itself`,
    );
  }
  if (info.size > maxBytes) throw tooLarge(info.size, maxBytes);
  // O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening still returns.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw tooLarge(n, maxBytes);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await handle.close();
  }
}

function tooLarge(size: number, maxBytes: number): BoundedReadError {
  return new BoundedReadError(
    'too-large',
    `is larger than ${Math.round(maxBytes / 1024)} KB (${size > maxBytes + 1 ? `${size} bytes` : 'at least that'}); a credential file is a few KB — is it the right file?`,
  );
}

function kindOf(info: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a named pipe';
  if (info.isCharacterDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}
