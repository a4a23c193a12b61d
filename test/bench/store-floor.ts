/**
 * The floor of any download that keeps what it receives: writing the bytes into a new file
 * from memory, with no network, measured in the same run as the figures it bounds.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';

const MIB = 1024 * 1024;

/**
 * Seconds to store `bytes` in a new file from memory (4 MiB writes, 4 in flight), no network. A
 * peer that keeps a copy of content it did not hold does at least this; on a VM the page cache
 * it lands in may first have to be faulted in from the host. Callers keep the file until their
 * run ends, so that its pages are not handed to the downloads measured after it.
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
