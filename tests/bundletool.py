# bundletool.py - an independent look at slm bundles for the shell tests:
# Python's tarfile reads the archive, a small msgpack codec the manifest.
#   manifest BUNDLE            the manifest as JSON
#   check BUNDLE               structure, offsets and checksums; prints params
#   sums BUNDLE                "sha256  name" lines from the manifest
#   rewrite IN OUT OP ARGS...  write a modified copy (see ops below)
#   member BUNDLE NAME         offset of a member's data in the archive
import hashlib, io, json, struct, sys, tarfile

def unpack(b, i=0):
    c = b[i]; i += 1
    if c <= 0x7f: return c, i
    if c >= 0xe0: return c - 256, i
    if c <= 0x8f: return unmap(b, i, c & 15)
    if c <= 0x9f: return unarr(b, i, c & 15)
    if c <= 0xbf: return b[i:i + (c & 31)].decode(), i + (c & 31)
    if c == 0xc0: return None, i
    if c == 0xc2: return False, i
    if c == 0xc3: return True, i
    fixed = {0xca: '>f', 0xcb: '>d', 0xcc: '>B', 0xcd: '>H', 0xce: '>I', 0xcf: '>Q',
             0xd0: '>b', 0xd1: '>h', 0xd2: '>i', 0xd3: '>q'}
    if c in fixed:
        s = struct.calcsize(fixed[c])
        return struct.unpack(fixed[c], b[i:i + s])[0], i + s
    lens = {0xd9: '>B', 0xda: '>H', 0xdb: '>I', 0xc4: '>B', 0xc5: '>H', 0xc6: '>I',
            0xdc: '>H', 0xdd: '>I', 0xde: '>H', 0xdf: '>I'}
    if c not in lens: raise ValueError('msgpack type 0x%02x' % c)
    s = struct.calcsize(lens[c]); n = struct.unpack(lens[c], b[i:i + s])[0]; i += s
    if c in (0xd9, 0xda, 0xdb): return b[i:i + n].decode(), i + n
    if c in (0xc4, 0xc5, 0xc6): return bytes(b[i:i + n]), i + n
    if c in (0xdc, 0xdd): return unarr(b, i, n)
    return unmap(b, i, n)

def unarr(b, i, n):
    a = []
    for _ in range(n):
        v, i = unpack(b, i); a.append(v)
    return a, i

def unmap(b, i, n):
    m = {}
    for _ in range(n):
        k, i = unpack(b, i); v, i = unpack(b, i); m[k] = v
    return m, i

def pack(v):
    if v is None: return b'\xc0'
    if v is True: return b'\xc3'
    if v is False: return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, float): return b'\xcb' + struct.pack('>d', v)
    if isinstance(v, str):
        e = v.encode(); return b'\xdb' + struct.pack('>I', len(e)) + e
    if isinstance(v, list):
        return b'\xdd' + struct.pack('>I', len(v)) + b''.join(pack(x) for x in v)
    return b'\xdf' + struct.pack('>I', len(v)) + b''.join(
        pack(k) + pack(x) for k, x in sorted(v.items()))

def load(path):
    t = tarfile.open(path)  # gzip or not
    ms = []
    for ti in t.getmembers():
        d = t.extractfile(ti).read() if ti.isfile() else b''
        ms.append([ti, d])
    return ms

def manifest(ms):
    v, n = unpack(ms[0][1])
    assert n == len(ms[0][1]), 'stray bytes after the manifest'
    return v

def check(path):
    ms = load(path)
    names = [ti.name for ti, _ in ms]
    assert names[0] == 'manifest.msgpack' and names[-1] == 'manifest.sha256', names
    man = manifest(ms)
    assert man['format'] == 'slm-bundle' and man['version'] == 2
    sumline = hashlib.sha256(ms[0][1]).hexdigest() + '  manifest.msgpack\n'
    assert ms[-1][1].decode() == sumline, 'manifest.sha256'
    assert [m['name'] for m in man['members']] == names[1:-1], 'member list'
    for (ti, d), m in zip(ms[1:-1], man['members']):
        assert ti.isfile() and ti.offset_data % 512 == 0, ti.name
        assert m['size'] == len(d) and m['sha256'] == hashlib.sha256(d).hexdigest(), ti.name
    params = 0
    for t in man['tensors']:
        assert t['member'] in names[1:-1], t['name']
        assert t.get('layout', 'tile16') == 'tile16', t['name']
        assert 'layout' not in t or (len(t['shape']) == 2 and t['dtype'] in (
            'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k')), t['name']
        n = 1
        for x in t['shape']: n *= x
        params += n
    print(params)

def sums(path):
    man = manifest(load(path))
    for m in man['members']:
        print('%s  %s' % (m['sha256'], m['name']))

# ---- rewriting ----

def write(path, ms):
    with tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT) as t:
        for ti, d in ms:
            t.addfile(ti, io.BytesIO(d) if ti.isfile() else None)

def set_manifest(ms, man):
    d = pack(man)
    ms[0][0].size = len(d); ms[0][1] = d
    line = (hashlib.sha256(d).hexdigest() + '  manifest.msgpack\n').encode()
    ms[-1][0].size = len(line); ms[-1][1] = line

def member(name, data=b'', kind=tarfile.REGTYPE, link=''):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644; ti.type = kind
    ti.linkname = link
    return [ti, data]

def rewrite(src, dst, op, args):
    ms = load(src)
    man = manifest(ms)
    if op == 'shape':        # TENSOR JSON-SHAPE: the manifest lies
        for t in man['tensors']:
            if t['name'] == args[0]: t['shape'] = json.loads(args[1])
        set_manifest(ms, man)
    elif op == 'size':       # MEMBER N: the member list lies about a size
        for m in man['members']:
            if m['name'] == args[0]: m['size'] = int(args[1])
        set_manifest(ms, man)
    elif op == 'same':       # re-encode the manifest, changing nothing
        set_manifest(ms, man)
    elif op == 'insert':     # NAME: an extra regular member after the manifest
        ms.insert(1, member(args[0], b'pwned\n'))
    elif op == 'symlink':    # NAME TARGET
        ms.insert(1, member(args[0], kind=tarfile.SYMTYPE, link=args[1]))
    elif op == 'hardlink':   # NAME TARGET
        ms.insert(1, member(args[0], kind=tarfile.LNKTYPE, link=args[1]))
    elif op == 'rename':     # OLD NEW: rename a member (header only)
        for ti, _ in ms:
            if ti.name == args[0]: ti.name = args[1]
    else:
        raise SystemExit('bundletool: unknown op ' + op)
    write(dst, ms)

def main():
    cmd = sys.argv[1]
    if cmd == 'manifest':
        json.dump(manifest(load(sys.argv[2])), sys.stdout, sort_keys=True); print()
    elif cmd == 'check':
        check(sys.argv[2])
    elif cmd == 'member':
        print([ti.offset_data for ti, _ in load(sys.argv[2]) if ti.name == sys.argv[3]][0])
    elif cmd == 'sums':
        sums(sys.argv[2])
    elif cmd == 'rewrite':
        rewrite(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        raise SystemExit('bundletool: unknown command ' + cmd)

if __name__ == '__main__':
    main()
