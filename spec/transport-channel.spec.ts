import { ChannelCore } from '../lib/transport/channel';
import { Message } from '../lib/wire/message';

function openChannel(): { ch: ChannelCore; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const ch = new ChannelCore(0, 'session', 1 << 20, 32768, (p) => sent.push(p));
  ch.opened(5, 1 << 20, 32768);
  ch.sink = { data: () => undefined, eof: () => undefined, closed: () => undefined, writable: () => undefined };
  return { ch, sent };
}

describe('ChannelCore request replies when the channel closes first', () => {
  it('an exit status before a clean close answers a pending exec request as accepted', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true, (m) => m.addString('true'));
    ch.onRequest('exit-status', false, new Message(new Message().addInt(0).asBytes()));
    ch.onClose();
    await expect(reply).resolves.toBe(true);
  });

  it('output before a clean close answers it as accepted too', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onData(Buffer.from('x'), 0);
    ch.onClose();
    await expect(reply).resolves.toBe(true);
  });

  it('a close with nothing before it rejects the pending request', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onClose();
    await expect(reply).rejects.toThrow(/channel closed/);
  });

  it('a connection that dies rejects it whatever came before', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onData(Buffer.from('x'), 0);
    ch.finish(new Error('connection lost'));
    await expect(reply).rejects.toThrow(/connection lost/);
  });
});
