// ringbuf.ts: reading a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) with the addon's reader
// (native/ringbuf.cc). The program submits without a wakeup, so the caller polls read() on a
// timer; each read returns the records written since the previous one.
import { getNative } from './native';
import { wrap } from '../errors';

export class RingbufReader {
  private handle: object | undefined;

  /** `mapFd`: the ring buffer map's fd (the caller keeps it open while reading). */
  constructor(
    mapFd: number,
    private readonly name: string,
  ) {
    try {
      this.handle = getNative().ringbufOpen(mapFd);
    } catch (e) {
      throw wrap('XD_ERR_BPF_MAP', `open ring buffer ${name}`, e, { map: name });
    }
  }

  /** The records available now (up to about maxBytes of them), each a view of its bytes. */
  read(maxBytes = 1 << 20): Buffer[] {
    if (!this.handle) throw new TypeError(`ring buffer ${this.name} is closed`);
    let buf: Buffer;
    try {
      buf = getNative().ringbufRead(this.handle, maxBytes);
    } catch (e) {
      throw wrap('XD_ERR_BPF_MAP', `read ring buffer ${this.name}`, e, { map: this.name });
    }
    const out: Buffer[] = [];
    for (let at = 0; at + 8 <= buf.length;) {
      const len = buf.readUInt32LE(at);
      out.push(buf.subarray(at + 8, at + 8 + len));
      at += 8 + ((len + 7) & ~7);
    }
    return out;
  }

  close(): void {
    if (this.handle) getNative().ringbufClose(this.handle);
    this.handle = undefined;
  }
}
