"""CURVE key files, in the text format of PROTOCOL.md §1.1 (that of
`qclient keygen`, which is CZMQ's certificate layout):

    #   comment
    metadata
        name = "alice"
    curve
        public-key = "Z85 (40 characters)"
        secret-key = "Z85"            (secret key files only)

A secret key file must be readable by its owner only (mode 0600): it is
refused otherwise, as the C programs refuse it.
"""
import os
import stat

import zmq
import zmq.utils.z85

Z85_LEN = 40
MAX_FILE = 64 * 1024
ENV_SECRET = "QJOB_CURVE_SECRET"
ENV_BROKER = "QJOB_BROKER_KEY"


class KeyFileError(ValueError):
    """A key file that cannot be used; the message says what to fix."""


def _check(path, key, line):
    try:
        ok = len(key) == Z85_LEN and len(zmq.utils.z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise KeyFileError("%s, line %d: %r is not a key (40 characters of Z85)"
                           % (path, line, key[:60]))
    return key


def parse(path, text):
    """(public keys, secret keys) in a key file's text, in order."""
    public, secret = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        first = s.split(None, 1)[0] if s else ""
        # Z85 has '#' and '=': a first word of 40 characters is a key.
        if len(first) == Z85_LEN:
            public.append(_check(path, first, n))
            continue
        if not s or s.startswith("#"):
            continue
        if "=" in s:
            name, value = (x.strip() for x in s.split("=", 1))
            if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
                value = value[1:-1]
            if name == "public-key":
                public.append(_check(path, value, n))
            elif name == "secret-key":
                secret.append(_check(path, value, n))
            continue
        if not (first == s and len(s) < 32 and s.replace("-", "").replace("_", "").isalnum()):
            raise KeyFileError("%s, line %d: expected a 40-character Z85 key, a 'name = value' "
                               "line or a section name" % (path, n))
    return public, secret


def _read(path, secret):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError("key file %s is not a regular file" % path)
        if secret and st.st_mode & 0o077:
            raise KeyFileError("secret key file %s is open to others (mode %04o): refusing to "
                               "use it; make it private with: chmod 600 %s"
                               % (path, st.st_mode & 0o7777, path))
        if st.st_size > MAX_FILE:
            raise KeyFileError("key file %s is too big" % path)
        data = os.read(fd, MAX_FILE + 1)
    finally:
        os.close(fd)
    return parse(path, data.decode("ascii", "replace"))


def load_secret(path):
    """(public, secret) Z85 bytes from a secret key file (NAME.key)."""
    public, secret = _read(path, True)
    if len(secret) != 1:
        raise KeyFileError("%s holds %s secret-key line: a secret key file (NAME.key from "
                           "qclient keygen) has exactly one"
                           % (path, "more than one" if secret else "no"))
    derived = zmq.curve_public(secret[0].encode())
    if public and public[0].encode() != derived:
        raise KeyFileError("%s: its public-key line does not belong to its secret key" % path)
    return derived, secret[0].encode()


def load_public(path):
    """The Z85 bytes of the one public key of a key file (NAME.pub)."""
    public, _ = _read(path, False)
    if not public:
        raise KeyFileError("%s holds no public key (expected public-key = \"...\")" % path)
    if any(k != public[0] for k in public):
        raise KeyFileError("%s holds more than one public key" % path)
    return public[0].encode()
