// BIRD's control-socket protocol (what birdc speaks), parsed. Pure.
//
// A reply is a run of lines. "NNNN-text" is a line of reply code NNNN with more to
// come; " text" continues the previous code; "NNNN text" (a space after the code) is the
// last line. Codes 0xxx are completions (0000 OK, 0001 hello, 0008 already disabled,
// 0009 disabled, 0010 enabled ...), 1xxx table rows, 2xxx table headers, 8xxx run-time
// errors and 9xxx parse errors (BIRD's doc/prog "Remote control" and client/ sources).

export interface BirdLine {
  code: number;
  text: string;
}

export interface BirdReply {
  /** Code of the final line. */
  code: number;
  /** 8xxx/9xxx: the command failed. */
  error: boolean;
  lines: BirdLine[];
}

/**
 * Feed received text; returns the complete replies found and the unconsumed rest.
 * `pending` carries the lines of a reply that has not ended yet.
 */
export function parseReplies(
  buffered: string,
  pending: BirdLine[] = [],
): { replies: BirdReply[]; rest: string; pending: BirdLine[] } {
  const replies: BirdReply[] = [];
  let lines = pending;
  let rest = buffered;
  for (;;) {
    const nl = rest.indexOf('\n');
    if (nl < 0) break;
    const raw = rest.slice(0, nl);
    rest = rest.slice(nl + 1);
    const m = /^(\d{4})([ -])(.*)$/.exec(raw);
    if (m) {
      lines.push({ code: Number(m[1]), text: m[3]! });
      if (m[2] === ' ') {
        const code = Number(m[1]);
        replies.push({ code, error: code >= 8000, lines });
        lines = [];
      }
    } else {
      // " text": continuation of the previous line's code.
      const prev = lines[lines.length - 1];
      lines.push({ code: prev ? prev.code : 0, text: raw.startsWith(' ') ? raw.slice(1) : raw });
    }
  }
  return { replies, rest, pending: lines };
}

/** One protocol from `show protocols all`. */
export interface BirdProtocol {
  name: string;
  proto: string;
  /** BIRD's protocol state: up, down, start, stop, … */
  state: string;
  since: string;
  info: string;
  /** "BGP state:" (Established, Idle, Connect, Active, OpenSent, OpenConfirm) for BGP protocols. */
  bgpState?: string;
  neighborAddress?: string;
  neighborAs?: number;
  /** "Last error:" of a BGP protocol. */
  lastError?: string;
  /** Routes exported (announced) over this protocol, from its channel(s). */
  exported?: number;
  /** Routes imported into the table by this protocol (for a static protocol: its route is live). */
  imported?: number;
}

/** Parse the reply of `show protocols all` (or `show protocols`). */
export function parseProtocols(reply: BirdReply): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let cur: BirdProtocol | undefined;
  for (const l of reply.lines) {
    if (l.code === 1002) {
      const t = l.text.trim().split(/\s+/);
      if (t.length < 4) continue;
      // Since is a time ("14:59:40.018") or a date and a time: take what looks like either.
      let i = 4;
      const sinceParts: string[] = [];
      while (i < t.length && /^[\d:.-]+$/.test(t[i]!)) sinceParts.push(t[i++]!);
      cur = { name: t[0]!, proto: t[1]!, state: t[3]!, since: sinceParts.join(' '), info: t.slice(i).join(' ') };
      out.push(cur);
      continue;
    }
    if (!cur || l.code !== 1006) continue;
    const kv = /^\s*([A-Za-z][A-Za-z0-9 ]*?):\s+(.*?)\s*$/.exec(l.text);
    if (!kv) continue;
    const [, key, value] = kv as unknown as [string, string, string];
    switch (key) {
      case 'BGP state':
        cur.bgpState = value;
        break;
      case 'Neighbor address':
        cur.neighborAddress = value.split('%')[0];
        break;
      case 'Neighbor AS':
        cur.neighborAs = Number(value);
        break;
      case 'Last error':
        cur.lastError = value;
        break;
      case 'Routes': {
        const m = /(\d+) imported, (?:(\d+) filtered, )?(\d+) exported/.exec(value);
        if (m) {
          cur.imported = (cur.imported ?? 0) + Number(m[1]);
          cur.exported = (cur.exported ?? 0) + Number(m[3]);
        }
        break;
      }
      default:
    }
  }
  return out;
}

/** The text of a reply's lines (for messages). */
export function replyText(reply: BirdReply): string {
  return reply.lines
    .map((l) => l.text.trim())
    .filter(Boolean)
    .join('; ');
}
