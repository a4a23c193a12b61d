/**
 * What keeping downloaded bytes costs on this machine: writing them into a new file from memory,
 * with no network, measured in the same run as the downloads it is set beside.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';

const MIB = 1024 * 1024;

/**
 * Seconds to store `bytes` in a new file from memory (4 MiB writes, 4 in flight), no network. A
 * peer that keeps a copy of content it did not hold writes it too. On a VM most of the cost can be
 * the page cache being faulted in from the host, and pages freed just before come back far
 * cheaper: a reference, not a strict floor. Callers keep the file until their run ends, so that
 * its pages are not handed to the downloads measured after it.
 */
export async function storeFromMemory(file: string, bytes: number): Promise<number> {
  const block = randomBytes(4 * MIB);
  const handle = await fs.open(file, 'wx');
  const t0 = process.hrtime.bigint();
  try {
    let next = 0;
    const blocks = Math.ceil(bytes / block.length);
    const writer = async () => {
      while (next < blocks) {
        const i = next++;
        await handle.write(block, 0, Math.min(block.length, bytes - i * block.length), i * block.length);
      }
    };
    await Promise.all([writer(), writer(), writer(), writer()]);
  } finally {
    await handle.close();
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
