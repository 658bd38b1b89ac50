// A client of BIRD's control socket: one connection per command (hello, command, reply).
import net from 'node:net';
import { XdError } from '../errors';
import { parseReplies, replyText, BirdLine, BirdReply } from './birdc';

export async function birdCommand(socketPath: string, command: string, timeoutMs = 3000): Promise<BirdReply> {
  if (/[\n\r]/.test(command))
    throw new XdError('XD_ERR_BGP', `bird command must be one line: ${JSON.stringify(command)}`);
  return new Promise<BirdReply>((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    let pending: BirdLine[] = [];
    let greeted = false;
    const done = (err: Error | null, reply?: BirdReply) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new XdError('XD_ERR_BGP', `bird ${socketPath}: no reply to "${command}" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('error', (err) =>
      done(new XdError('XD_ERR_BGP', `bird control socket ${socketPath}: ${err.message}`, { cause: err })),
    );
    sock.on('close', () =>
      done(new XdError('XD_ERR_BGP', `bird ${socketPath}: connection closed before the reply to "${command}"`)),
    );
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const r = parseReplies(buf, pending);
      buf = r.rest;
      pending = r.pending;
      for (const reply of r.replies) {
        if (!greeted) {
          greeted = true;
          if (reply.code !== 1)
            return done(new XdError('XD_ERR_BGP', `bird ${socketPath}: unexpected greeting: ${replyText(reply)}`));
          sock.write(`${command}\n`);
          continue;
        }
        if (reply.error)
          return done(
            new XdError('XD_ERR_BGP', `bird: ${command}: ${replyText(reply)}`, { detail: { code: reply.code } }),
          );
        return done(null, reply);
      }
    });
  });
}
