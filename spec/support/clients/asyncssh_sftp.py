"""AsyncSSH's SFTP client against a server under test (spec/sftp-server-interop.spec.ts runs it
with /usr/bin/python3; written for AsyncSSH 2.10, Debian 12's).

Spec (JSON on stdin): host, port, username, password, hostKeyFingerprints (SHA256:...), local
(a local directory holding "src.bin"), dir (the remote directory to create and work in).
Scenario: mkdir dir; put src.bin -> dir/up.bin; get it back as down.bin; listdir; stat;
exists; copy dir/up.bin to dir/kept.bin by put; remove dir/up.bin; exists again.
Result (last stdout line, JSON): listdir, stat {size, permissions, type}, existsBefore,
existsAfter, missingExists (exists() of a name that is not there), error.
"""

import asyncio
import json
import os
import sys
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

import asyncssh  # noqa: E402


async def scenario(spec, result):
    async with asyncssh.connect(
        spec["host"],
        port=spec["port"],
        username=spec["username"],
        password=spec["password"],
        known_hosts=None,
        agent_path=None,
        config=None,
        client_keys=None,
        connect_timeout=10,
    ) as conn:
        fp = conn.get_server_host_key().get_fingerprint("sha256")
        if fp not in spec["hostKeyFingerprints"]:
            raise asyncssh.Error(0, "unexpected host key %s" % fp)
        async with conn.start_sftp_client() as sftp:
            d = spec["dir"]
            local = spec["local"]
            await sftp.mkdir(d)
            await sftp.put(os.path.join(local, "src.bin"), d + "/up.bin")
            await sftp.put(os.path.join(local, "src.bin"), d + "/kept.bin")
            await sftp.get(d + "/up.bin", os.path.join(local, "down.bin"))
            result["listdir"] = sorted(n for n in await sftp.listdir(d))
            st = await sftp.stat(d + "/up.bin")
            result["stat"] = {"size": st.size, "permissions": st.permissions, "type": st.type}
            result["existsBefore"] = await sftp.exists(d + "/up.bin")
            await sftp.remove(d + "/up.bin")
            result["existsAfter"] = await sftp.exists(d + "/up.bin")
            result["missingExists"] = await sftp.exists(d + "/never-there")


def main():
    spec = json.loads(sys.stdin.read())
    result = {"error": None}
    try:
        asyncio.run(asyncio.wait_for(scenario(spec, result), spec.get("timeoutMs", 60000) / 1000.0))
    except Exception as e:  # noqa: BLE001
        result["error"] = "%s: %s" % (type(e).__name__, e)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
