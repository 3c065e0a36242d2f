"""Vendors an app's pure-Python dependencies (run by the wpaas Python
buildpack in the build sandbox, with the toolchain's Python).

    python vendor.py TARGET (requirements.txt | pyproject.toml)

pip installs them into TARGET. A package pip took as a native wheel is
installed again from source with the C compiler disabled, which is how
packages with an optional pure-Python fallback (MarkupSafe's speedups)
build without it; one that still has native code, or whose build fails,
is reported on stdout as ``wpaas-native: NAME`` and the exit status is 3.
"""

import csv
import os
import re
import shutil
import subprocess
import sys

NATIVE = (".so", ".pyd", ".dylib")


def requirements(path):
    """A requirements file for pip: the file itself, or one written from
    pyproject.toml's [project] dependencies (None when there are none)."""
    if os.path.basename(path) != "pyproject.toml":
        return path
    import tomllib

    with open(path, "rb") as f:
        deps = tomllib.load(f).get("project", {}).get("dependencies", [])
    if not deps:
        return None
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), "wpaas-requirements.txt")
    with open(out, "w") as f:
        f.write("\n".join(deps) + "\n")
    return out


def native_dists(target):
    """Names of the distributions in ``target`` that installed native code."""
    found = set()
    for entry in os.listdir(target):
        if not entry.endswith(".dist-info"):
            continue
        name = entry[: -len(".dist-info")].rsplit("-", 1)[0]
        try:
            with open(os.path.join(target, entry, "RECORD"), newline="") as f:
                if any(row and row[0].endswith(NATIVE) for row in csv.reader(f)):
                    found.add(name)
        except OSError:
            pass
    return found


def pip(target, reqs, no_binary):
    if os.path.exists(target):
        shutil.rmtree(target)
    cmd = [sys.executable, "-m", "pip", "install", "--target", target, "--no-compile",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-r", reqs]
    if no_binary:
        cmd += ["--no-binary", ",".join(sorted(no_binary))]
    # No C compiler: an extension that is optional is left out, one that
    # is not fails its build.
    env = dict(os.environ, CC="/bin/false", CXX="/bin/false", PIP_NO_WARN_SCRIPT_LOCATION="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in proc.stdout:
        line = line.rstrip("\n")
        output.append(line)
        # pip 23's notice about its wheel cache and --no-binary is noise here.
        if not line.startswith("DEPRECATION: --no-binary"):
            print("  " + line, flush=True)
    proc.wait()
    output = "\n".join(output)
    failed = set(re.findall(r"Failed (?:to )?build(?:ing wheel for)? ([A-Za-z0-9_.\-]+)", output))
    failed |= set(re.findall(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", output))
    return proc.returncode, failed


def main():
    target, source = sys.argv[1], sys.argv[2]
    reqs = requirements(source)
    if reqs is None or not any(l.strip() and not l.lstrip().startswith("#") for l in open(reqs)):
        os.makedirs(target, exist_ok=True)
        return 0
    no_binary = set()
    for _ in range(3):
        code, failed = pip(target, reqs, no_binary)
        if code != 0:
            # Only a package being built without its native wheel is known
            # to need C; any other failure is pip's to explain.
            for name in sorted(failed & no_binary):
                print(f"wpaas-native: {name}", flush=True)
            return 3 if failed & no_binary else 1
        native = native_dists(target)
        if not native:
            return 0
        if native <= no_binary:
            for name in sorted(native):
                print(f"wpaas-native: {name}", flush=True)
            return 3
        print("  Native wheels for " + ", ".join(sorted(native)) + ": installing from source without C extensions", flush=True)
        no_binary |= native
    return 3


if __name__ == "__main__":
    sys.exit(main())
