#!/usr/bin/env python3
"""make_corpus.py - (re)write the seed corpora tests/fuzz/corpus/<harness>/.

Seeds come from the project's own inputs: config-examples, the webhook
fixtures, and the C string literals of the unit tests (adjacent literals
joined, escapes decoded), each put in the harness's input format (fields
separated by NUL bytes, see the harness's header comment).  Run it from
anywhere after changing those inputs and commit the result; files are
named by content hash, so unchanged seeds keep their names.
"""
import hashlib
import os
import re
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_SEED = 4096  # bytes per seed
MAX_SEEDS = 60   # per harness
KEY = ("AAAAC3NzaC1lZDI1NTE5AAAAIEYjBjAYt2uSynVOSPywG1ONvo6gSMifcBwqsVDYDnt4")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


def literals(path):
    """The string literals of a C file, adjacent ones joined."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"^\s*#\s*include.*$", " ", text, flags=re.M)
    tok = re.compile(r'"((?:[^"\\\n]|\\.)*)"|(\S)', re.S)
    out, cur, gap = [], None, True
    for m in tok.finditer(text):
        if m.group(1) is not None:
            s = decode(m.group(1))
            cur = s if cur is None else cur + s
        elif cur is not None:
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


def decode(s):
    out, i = bytearray(), 0
    simple = {"n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39, "0": 0,
              "a": 7, "b": 8, "f": 12, "v": 11, "?": 63}
    raw = s.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        e = chr(raw[i + 1])
        if e == "x":
            m = re.match(rb"[0-9a-fA-F]+", raw[i + 2:])
            out.append(int(m.group(0), 16) & 0xFF)
            i += 2 + len(m.group(0))
        elif e in "01234567":
            m = re.match(rb"[0-7]{1,3}", raw[i + 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
        else:
            out.append(simple.get(e, ord(e)))
            i += 2
    return bytes(out)


def read(path):
    return open(os.path.join(ROOT, path), "rb").read()


def pick(path, pattern, wrap=lambda s: s, min_len=1):
    rx = re.compile(pattern, re.S)
    return [wrap(s) for s in literals(path)
            if len(s) >= min_len and rx.search(s.decode("latin-1"))]


def fields(*parts):
    return b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)


def forge_seeds():
    seeds = []
    spec = {"github-push-tag.json": "h", "github-push-branch.json": "h",
            "gitlab-tag-push.json": "l", "gitea-tag-push.json": "g"}
    blocks = read("tests/fixtures/webhooks/HEADERS.txt").decode().split("## ")
    for name, forge in spec.items():
        body = read("tests/fixtures/webhooks/" + name)
        block = next(b for b in blocks if b.startswith(name))
        hdrs = [l for l in block.splitlines()[1:]
                if re.match(r"^[A-Za-z0-9-]+: ", l)
                and not l.startswith("Content-Length")]
        head = ("\n".join(hdrs) + "\n\n").encode()
        seeds.append(forge.encode() + head + body)
        # The same delivery as a form (GitHub and Gitea can send those).
        form = b"payload=" + re.sub(
            rb"[^A-Za-z0-9_.~-]", lambda m: b"%%%02X" % m.group(0)[0], body)
        ct = re.sub(r"Content-Type: [^\n]*",
                    "Content-Type: application/x-www-form-urlencoded",
                    head.decode())
        if "Content-Type" not in ct:
            ct = "Content-Type: application/x-www-form-urlencoded\n" + ct
        seeds.append(forge.encode() + ct.encode() + form)
    # A small push as a form, which the fixtures are too big for.
    push = ('{"ref":"refs/tags/v1.0.0","after":"%s","deleted":false,'
            '"repository":{"full_name":"acme/shop"},"head_commit":{"id":"%s"}}'
            % (COMMIT, COMMIT))
    form = "payload=" + re.sub(r"[^A-Za-z0-9_.~-]",
                               lambda m: "%%%02X" % ord(m.group(0)), push)
    for forge, event in (("h", "X-GitHub-Event"), ("g", "X-Gitea-Event")):
        seeds.append(("%sContent-Type: application/x-www-form-urlencoded\n"
                      "%s: push\n\n%s" % (forge, event, form)).encode())
    return seeds


def journal_seeds():
    job = ('{"version":1,"id":"1700000000-0badf00d","project":"shop",'
           '"tag":"v1.2.0","commit":"%s","delivery_id":%s,"source":"%s",'
           '"state":"%s","attempts":%d,"created_at":1700000000,'
           '"updated_at":1700000100,"not_before":0,"error":%s,'
           '"results":%s,"log":"%s"}')
    return [(job % a).encode() for a in [
        (COMMIT, "null", "github", "queued", 0, "null", "[]", ""),
        (COMMIT, '"5b1f2c80"', "hook", "running", 1, "null", "[]", "build\\n"),
        (COMMIT, "null", "api", "failed", 5, '"push: 500"', "[]", "x"),
        (COMMIT, '"d1"', "gitlab", "succeeded", 1, "null",
         '["r.example/app:v1@%s"]' % DIGEST, "ok")]]


def render_seeds():
    """Every case of the template oracle (tests/oracle/cases), with the data
    document the oracle renders it against: template NUL JSON."""
    data = read("tests/oracle/data.json")
    cases = os.path.join(ROOT, "tests", "oracle", "cases")
    seeds = []
    for name in sorted(os.listdir(cases)):
        text = read(os.path.join("tests", "oracle", "cases", name))
        for case in text.split(b"\n=== ")[1:]:
            body = case.partition(b"\n")[2]
            if body:
                seeds.append(fields(body, data))
    return seeds


def harnesses():
    h = {}
    h["werf_config"] = [read("config-examples/demo/werf.yaml")] + pick(
        "tests/unit/test_config.c", r"^(project|configVersion|image|---)",
        min_len=8)
    h["dockerfile"] = [read("config-examples/demo/api/Dockerfile"),
                       read("config-examples/demo/web/Dockerfile")] + pick(
        "tests/unit/test_dockerfile.c", r"(?i)^(#|\s*)(FROM|ARG|# ?syntax|# ?escape)",
        lambda s: fields(s, "", "V=1\nBASE=alpine"))
    h["ignore"] = pick("tests/unit/test_ignore.c", r"\n|\*|!",
                       lambda s: fields(s, "a/b\nsrc/x.c\n.git/config"))
    h["reference"] = pick("tests/unit/test_reference.c", r"^[a-z0-9.:/@_\-\[\]]+$")
    h["template"] = pick("tests/unit/test_template.c", r"%",
                         lambda s: fields(s, "v1.2.3", "app\nweb", "v1.2.0\nv1.3.0-rc.1")) + pick(
        "tests/unit/test_semver.c", r"^v?[0-9]",
        lambda s: fields("reg/app:%semver_major%", s, "app", "v1.2.0\nv2.0.0"))
    h["labels"] = pick("tests/unit/test_labels.c", r"=",
                       lambda s: fields("" if b"WERF_" not in s else ",",
                                        s if s.startswith(b"WERF_") else "",
                                        s if not s.startswith(b"WERF_") else ""))
    z, a = "0" * 40, COMMIT
    h["hook"] = [("%s %s refs/tags/v1.0.0\n%s %s refs/heads/main\n"
                  "%s %s refs/tags/old\n" % (z, a, z, a, a, z)).encode()] + pick(
        "tests/unit/test_hook.c", r"refs/")
    h["known_hosts"] = pick("tests/unit/test_known_hosts.c", r"ssh-|^\||@",
                            lambda s: fields("git.example.org", "22", KEY, s))
    h["apiclient"] = [b"\x00\xca" + b'{"job":"1700000000-0badf00d","status":"queued"}',
                      b"\x00\xc8" + b'{"ignored":"tag not selected"}',
                      b"\x01\x91" + b'{"error":"unauthorized"}',
                      b"\x01\xf4" + b'{"error":"queue: disk full"}'] + pick(
        "tests/unit/test_apiclient.c", r"^\{", lambda s: b"\x00\xca" + s)
    h["image"] = pick("tests/unit/test_image.c", r"^\s*\{", min_len=20) + [
        b"linux/arm64/v8"]
    h["slug"] = pick("tests/unit/test_slug.c", r".",
                     lambda s: fields(s, "app\nweb\nbackend-api", "*\n!web")) + pick(
        "tests/unit/test_select.c", r"^[!*a-z]")
    h["mirror_url"] = [b"https://oauth2:glpat-secret@gitlab.example.com/acme/shop.git",
                       b"ssh://git@[::1]:2222/acme/shop.git",
                       b"git@github.com:acme/shop.git",
                       b"https://user:p@ss@git.example.com/x.git",
                       b"file:///srv/git/shop.git"] + pick(
        "tests/unit/test_mirror.c", r"://|@")
    h["journal"] = journal_seeds()
    def resp(status, hdrs):
        return ("HTTP/1.1 %s\r\n" % status + "".join(
            "%s: %s\r\n" % kv for kv in hdrs) + "\r\n")
    h["registry"] = pick("tests/unit/test_registry.c", r"^(Bearer|Basic) ",
                         lambda s: fields("https://r.example:5000/v2/",
                                          resp("401 Unauthorized", [("Content-Type", "application/json")])
                                          .encode() + b"WWW-Authenticate: " + s + b"\r\n",
                                          '{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}')) + pick(
        "tests/unit/test_registry.c", r"errors",
        lambda s: fields("http://127.0.0.1:5000/v2/x/blobs/uploads/",
                         resp("429 Too Many Requests", [("Retry-After", "120")]), s)) + [
        fields("https://r.example/v2/x/blobs/uploads/", resp("202 Accepted", [
            ("Location", "/v2/x/blobs/uploads/u?_state=abc"), ("Content-Length", "0"),
            ("OCI-Chunk-Min-Length", "5242880"), ("Docker-Content-Digest", DIGEST)]), ""),
        fields("https://r.example/v2/x/manifests/v1", resp("503 Service Unavailable", [
            ("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("Content-Type", "application/json; charset=utf-8")]),
            '{"errors":[{"code":"UNAVAILABLE","message":"try later","detail":{}}]}')]
    h["docker_config"] = pick("tests/unit/test_registry.c", r"auths|credHelpers|credsStore|Secret",
                              lambda s: fields("docker.io", s))
    h["forge"] = forge_seeds()
    h["werf_yaml"] = [read(os.path.join("tests", "oracle", "werf_yaml", "cases", f))
                      for f in sorted(os.listdir(os.path.join(ROOT, "tests", "oracle", "werf_yaml", "cases")))]
    render = render_seeds()
    h["render"] = render[::max(1, len(render) // MAX_SEEDS)]
    # flags byte (bit 0: longest; bits 1-3: n + 1), pattern, text, replacement
    h["regex"] = pick("tests/unit/test_regex.c", r"[\\()\[*+?|^${]",
                      lambda s: b"\x0f" + fields(s, "ab aab\nK\u263a 12 (x)", "<$1|${n}>"))
    h["server_config"] = [read("config-examples/server.yaml")] + pick(
        "tests/unit/test_server_config.c", r"projects:|listen|state_dir", min_len=20)
    return h


def main():
    for name, seeds in sorted(harnesses().items()):
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        kept = 0
        for s in dict.fromkeys(seeds):
            if not s or len(s) > MAX_SEED or kept >= MAX_SEEDS:
                continue
            fn = hashlib.sha1(s).hexdigest()[:16]
            open(os.path.join(d, fn), "wb").write(s)
            kept += 1
        print("%-14s %3d seeds" % (name, kept), file=sys.stderr)


if __name__ == "__main__":
    main()
