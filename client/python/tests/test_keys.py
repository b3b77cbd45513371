"""CURVE key files in the Python client (qjob.keys and the Client's
curve_secret_file / broker_key_file), on files made by `qclient keygen`
and against a real CURVE broker (tests/integration/harness.py)."""

import asyncio
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("QJOB_SOURCE_DIR") or os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import harness  # noqa: E402
import qjob  # noqa: E402
import qjob.blocking  # noqa: E402
import zmq  # noqa: E402
from qjob import keys  # noqa: E402

TEST_TIMEOUT = 60


class CurveCluster(unittest.TestCase):
    """A CURVE broker and worker; keys from qclient keygen (harness)."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster(tcp=True)
        try:
            cls.keys = cls.cluster.enable_curve()
            cls.cluster.start_broker()
            cls.cluster.start_worker()
        except BaseException:
            cls.cluster.dump_logs()
            cls.cluster.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def key(self, name, kind):
        return self.keys[name] + "." + kind

    def run_async(self, body, **options):
        async def main():
            async with qjob.Client(self.cluster.endpoint, connect_timeout=5, **options) as c:
                return await body(c)
        return asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT))

    # ---- the files

    def test_load_keygen_files(self):
        public, secret = keys.load_secret(self.key("client", "key"))
        self.assertEqual(zmq.curve_public(secret), public)
        self.assertEqual(keys.load_public(self.key("client", "pub")), public)
        self.assertEqual(keys.load_public(self.key("client", "key")), public)
        with self.assertRaisesRegex(keys.KeyFileError, "no secret-key"):
            path = self.cluster.path("copy.pub")
            with open(self.key("client", "pub")) as src, open(path, "w") as dst:
                dst.write(src.read())
            os.chmod(path, 0o600)
            keys.load_secret(path)

    def test_loose_secret_refused(self):
        path = self.cluster.path("loose.key")
        with open(self.key("client", "key")) as src:
            text = src.read()
        with open(path, "w") as dst:
            dst.write(text)
        os.chmod(path, 0o644)
        with self.assertRaisesRegex(keys.KeyFileError, "chmod 600"):
            keys.load_secret(path)
        with self.assertRaisesRegex(keys.KeyFileError, "chmod 600"):
            qjob.Client(self.cluster.endpoint, curve_secret_file=path,
                        broker_key_file=self.key("broker", "pub"))
        os.chmod(path, 0o600)
        self.assertEqual(keys.load_secret(path), keys.load_secret(self.key("client", "key")))

    def test_bare_keys_and_errors(self):
        public, _ = zmq.curve_keypair()
        path = self.cluster.path("bare.pub")
        with open(path, "w") as f:
            f.write("# a comment\n%s  someone\n" % public.decode())
        self.assertEqual(keys.load_public(path), public)
        with open(path, "w") as f:
            f.write("curve\n    public-key = \"not a key\"\n")
        with self.assertRaisesRegex(keys.KeyFileError, "line 2"):
            keys.load_public(path)
        with self.assertRaisesRegex(ValueError, "both"):
            qjob.Client(self.cluster.endpoint, curve_secret_file=self.key("client", "key"))
        with self.assertRaisesRegex(ValueError, "not both"):
            qjob.Client(self.cluster.endpoint, curve_secret_file=self.key("client", "key"),
                        broker_key_file=self.key("broker", "pub"), curve_server_key=public)

    # ---- against the broker

    def test_job_over_curve(self):
        async def body(c):
            return await (await c.submit("echo", {"over": "curve"}))
        value = self.run_async(body, curve_secret_file=self.key("client", "key"),
                               broker_key_file=self.key("broker", "pub"))
        self.assertEqual(value, {"over": "curve"})
        with qjob.blocking.Client(self.cluster.endpoint,
                                  curve_secret_file=self.key("client", "key"),
                                  broker_key_file=self.key("broker", "pub")) as c:
            self.assertEqual(c.submit("echo", 5).get(timeout=30), 5)

    def test_files_from_the_environment(self):
        old = {k: os.environ.get(k) for k in (keys.ENV_SECRET, keys.ENV_BROKER)}
        os.environ[keys.ENV_SECRET] = self.key("client", "key")
        os.environ[keys.ENV_BROKER] = self.key("broker", "pub")
        try:
            async def body(c):
                return await (await c.submit("echo", "env"))
            self.assertEqual(self.run_async(body), "env")
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_worker_key_is_denied_as_client(self):
        async def body(c):
            return None
        with self.assertRaises(qjob.Denied):
            self.run_async(body, curve_secret_file=self.key("worker", "key"),
                           broker_key_file=self.key("broker", "pub"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
