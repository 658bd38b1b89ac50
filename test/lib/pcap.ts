// A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET) holding the given frames, for
// checks by an independent decoder (tcpdump, tshark).
export function pcap(frames: Buffer[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const parts: Buffer[] = [g];
  for (const f of frames) {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    parts.push(h, f);
  }
  return Buffer.concat(parts);
}
