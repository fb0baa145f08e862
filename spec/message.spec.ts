import { Message } from '../lib/wire/message';
import { SSHException } from '../lib/errors';

describe('Message', () => {
  it('encodes every field type as RFC 4251 section 5 specifies', () => {
    const m = new Message()
      .addByte(0x14)
      .addBoolean(true)
      .addInt(0x29b7f4aa)
      .addInt64(0x0102030405060708n)
      .addString('testing')
      .addList(['zlib', 'none'])
      .addMpint(0n)
      .addMpint(0x9a378f9b2e332a7n)
      .addMpint(0x80n)
      .addMpint(-0x1234n)
      .addMpint(-0xdeadbeefn);
    expect(m.asBytes().toString('hex')).toBe(
      '14' +
        '01' +
        '29b7f4aa' +
        '0102030405060708' +
        '00000007' + Buffer.from('testing').toString('hex') +
        '00000009' + Buffer.from('zlib,none').toString('hex') +
        '00000000' +
        '00000008' + '09a378f9b2e332a7' + // RFC 4251's examples
        '00000002' + '0080' +
        '00000002' + 'edcc' +
        '00000005' + 'ff21524111',
    );
  });

  it('reads back what it wrote', () => {
    const m = new Message()
      .addByte(255)
      .addBoolean(false)
      .addInt(0xffffffff)
      .addInt64(0xffffffffffffffffn)
      .addString(Buffer.from([0, 1, 2]))
      .addList([])
      .addMpint(-0xdeadbeefn)
      .addMpint(1n << 520n)
      .addAdaptiveInt(5)
      .addAdaptiveInt(1n << 40n);
    const r = new Message(m.asBytes());
    expect(r.getByte()).toBe(255);
    expect(r.getBoolean()).toBe(false);
    expect(r.getInt()).toBe(0xffffffff);
    expect(r.getInt64()).toBe(0xffffffffffffffffn);
    expect(r.getString()).toEqual(Buffer.from([0, 1, 2]));
    expect(r.getList()).toEqual([]);
    expect(r.getMpint()).toBe(-0xdeadbeefn);
    expect(r.getMpint()).toBe(1n << 520n);
    expect(r.getAdaptiveInt()).toBe(5n);
    expect(r.getAdaptiveInt()).toBe(1n << 40n);
    expect(r.remaining).toBe(0);
  });

  it('tracks what was read and what remains, and rewinds', () => {
    const m = new Message(new Message().addInt(7).addString('abc').asBytes());
    expect(m.getInt()).toBe(7);
    expect(Buffer.concat([m.getSoFar(), m.getRemainder()])).toEqual(m.asBytes());
    expect(m.getText()).toBe('abc');
    m.rewind();
    expect(m.getInt()).toBe(7);
  });

  it('grows past its initial capacity', () => {
    const big = Buffer.alloc(100_000, 7);
    const m = new Message().addString(big).addInt(1);
    const r = new Message(m.asBytes());
    expect(r.getString()).toEqual(big);
    expect(r.getInt()).toBe(1);
  });

  it('add() dispatches on type', () => {
    const a = new Message().add(true, 3, 5n, 'x', ['a', 'b']).asBytes();
    const b = new Message().addBoolean(true).addInt(3).addMpint(5n).addString('x').addList(['a', 'b']).asBytes();
    expect(a).toEqual(b);
  });

  describe('never pads: reading past the end throws SSHException naming the field', () => {
    const cases: Array<[string, (m: Message) => unknown, string]> = [
      ['getByte', (m) => m.getByte(), 'a byte'],
      ['getBoolean', (m) => m.getBoolean(), 'a boolean'],
      ['getInt', (m) => m.getInt(), 'a uint32'],
      ['getInt64', (m) => m.getInt64(), 'a uint64'],
      ['getBytes', (m) => m.getBytes(3), '3 bytes'],
      ['getString', (m) => m.getString(), 'a string'],
      ['getMpint', (m) => m.getMpint(), 'mpint'],
      ['getList', (m) => m.getList(), 'name-list'],
    ];
    for (const [name, read, what] of cases) {
      it(name, () => {
        const m = new Message(Buffer.alloc(0));
        expect(() => read(m)).toThrow(SSHException);
        expect(() => read(new Message(Buffer.alloc(0)))).toThrow(what);
      });
    }
  });

  it('refuses a string whose length is past the end (oversize length)', () => {
    const m = new Message(Buffer.from('ffffffff00', 'hex'));
    expect(() => m.getString()).toThrow(/string of length 4294967295 at offset 0, only 1 bytes left/);
  });

  it('refuses values that do not fit their field', () => {
    expect(() => new Message().addInt(-1)).toThrow(RangeError);
    expect(() => new Message().addInt(2 ** 32)).toThrow(RangeError);
    expect(() => new Message().addInt64(-1n)).toThrow(RangeError);
  });
});
