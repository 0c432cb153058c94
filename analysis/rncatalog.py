"""Reading run directories for the catalogue (resnode-runs): a run's manifest,
its resolved config, its final metrics, its files, and whether it still lives.

A run directory is the source of truth: nothing here writes into one.
"""
import calendar
import json
import os
import re
import socket
import time

import numpy as np

import rnlib

MANIFEST_VERSION = 2  # the newest manifest schema this reads (include/resnode/core/rundir.h)
STALE_BEATS = 5  # a heartbeat older than this many beats: the run died without a word
DEFAULT_BEAT_S = 60  # RN_HEARTBEAT_SECONDS, for manifests that do not say
REQUIRED = ("experiment", "status", "start")


class Skip(Exception):
    """A directory that cannot be indexed, and why."""


# --- the resolved config (config.cfg: libconfig syntax, as resnode-mpi writes it)

_TOKEN = re.compile(r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*"|[{}\[\]()=:;,]|[^\s{}\[\]()=:;,"#]+', re.S)


def _tokens(text, name):
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise Skip("%s: unreadable at byte %d" % (name, pos))
        tok = m.group(0)
        pos = m.end()
        if not tok.strip() or tok.startswith(("#", "//", "/*")):
            continue
        out.append(tok)
    return out


def _scalar(tok):
    if tok.startswith('"'):
        return json.loads(tok)
    if tok in ("true", "false"):
        return tok
    try:
        return int(tok.rstrip("Ll"), 0)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        raise Skip("config.cfg: unexpected %r" % tok)


def _value(toks, i):
    """The value at toks[i]: (python value, next index)."""
    t = toks[i]
    if t == "{":
        return _group(toks, i + 1, "}")
    if t in ("[", "("):
        close = "]" if t == "[" else ")"
        items, i = [], i + 1
        while toks[i] != close:
            v, i = _value(toks, i)
            items.append(v)
            if toks[i] == ",":
                i += 1
        return items, i + 1
    return _scalar(t), i + 1


def _group(toks, i, close):
    out = {}
    while i < len(toks) and toks[i] != close:
        key = toks[i]
        if toks[i + 1] not in ("=", ":"):
            raise Skip("config.cfg: expected = after %s" % key)
        out[key], i = _value(toks, i + 2)
        while i < len(toks) and toks[i] in (";", ","):
            i += 1
    return out, i + 1


def _flatten(value, prefix, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, "%s.%s" % (prefix, k) if prefix else k, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for n, v in enumerate(value):  # a list of groups (model.field): one key a member
            _flatten(v, "%s.%d" % (prefix, n), out)
    else:
        out[prefix] = value


def _read_text(path, name):
    """The text of a run's file; Skip naming it where it cannot be read."""
    try:
        with open(os.path.join(path, name)) as f:
            return f.read()
    except OSError as e:
        raise Skip("%s unreadable: %s" % (name, e.strerror))


def read_config(path):
    """config.cfg as {dotted key: value}: numbers, strings, "true"/"false", lists."""
    name = os.path.join(path, "config.cfg")
    text = _read_text(path, "config.cfg")
    try:
        toks = _tokens(text, name)
        tree, _ = _group(toks, 0, None)
    except IndexError:
        raise Skip("config.cfg is cut short (half-written?)")
    flat = {}
    _flatten(tree, "", flat)
    return flat


# --- the manifest and the run's liveness

def read_manifest(path):
    text = _read_text(path, "manifest.json")
    try:
        m = json.loads(text)
    except ValueError as e:
        raise Skip("manifest.json is damaged or half-written (%s)" % e)
    if not isinstance(m, dict):
        raise Skip("manifest.json is not a resnode manifest (not a JSON object)")
    version = m.get("manifest_version", 1)
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise Skip("manifest_version %s is from a newer resnode-mpi (this one reads up to %d): index it with that version's resnode-runs" % (version, MANIFEST_VERSION))
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        raise Skip("manifest.json lacks %s: not a resnode manifest, or one from before the manifest had them" % ", ".join(missing))
    return m


def parse_time(text):
    """A manifest's UTC time ("2026-12-07T19:54:03Z") as seconds since the epoch, or None."""
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def _held_inodes():
    """The inodes of the files some process holds a lock on (/proc/locks), or None where unreadable."""
    try:
        with open("/proc/locks") as f:
            return {int(line.split()[5].rsplit(":", 1)[1]) for line in f if len(line.split()) > 5}
    except (OSError, ValueError, IndexError):
        return None


def lock_holder(path):
    """Whether a live process holds the run's lock: True, False, or None where it
    cannot be seen from here (the lock's owner ran on another host)."""
    lock = os.path.join(path, ".lock")
    try:
        with open(lock) as f:
            owner = f.read()
        inode = os.stat(lock).st_ino
    except OSError:
        return None
    m = re.match(r"pid (\d+) on (\S+)", owner)
    if not m or m.group(2) != socket.gethostname():
        return None
    held = _held_inodes()
    if held is not None:
        return inode in held
    try:  # no /proc/locks: whether the owner's process lives
        os.kill(int(m.group(1)), 0)
        return True
    except ProcessLookupError:
        return False
    except OSError:
        return None


def liveness(path, m, stale_after=None, now=None):
    """(status, why): "stale" for a run whose manifest says running but that
    no process runs (its lock free on this host; elsewhere, a heartbeat older
    than stale_after seconds, by default STALE_BEATS beats)."""
    status = m.get("status")
    if status != "running":
        return status, ""
    beat = m.get("heartbeat") or {}
    beat_time = beat.get("time") if isinstance(beat, dict) else None
    said = "last heartbeat %s" % beat_time if beat_time else "no heartbeat (manifest version 1)"
    held = lock_holder(path)
    if held is False:
        return "stale", "died without a status: no process holds its lock; %s" % said
    if held is None and beat_time:
        limit = stale_after if stale_after is not None else STALE_BEATS * int(beat.get("every_s") or DEFAULT_BEAT_S)
        age = (now if now is not None else time.time()) - (parse_time(beat_time) or 0)
        if age > limit:
            return "stale", "died without a status: %s, %.0f s ago (more than %d s)" % (said, age, limit)
    return "running", said


# --- metrics beyond the experiment's own (rnlib.final_metrics)

def _mean_at(table, column, keep):
    vals = table[column][keep]
    return float(np.mean(vals)) if len(vals) else None


def catalogue_metrics(path, experiment, m):
    """{name: (value, ci_low, ci_high)}: the experiment's final metrics, the
    final loss, accuracy per depth, wall time and peak memory."""
    flat, _ = rnlib.final_metrics(path, experiment)
    out = {}
    for k, v in flat.items():
        if "_ci_" not in k:
            out[k] = (float(v), flat.get(k + "_ci_low"), flat.get(k + "_ci_high"))
    if experiment == "ensemble" and not any(k.startswith("alpha_") for k in out):
        rates = rnlib.read_csv(path, "rates.csv", required=False)  # the run's own fit, no interval (resnode-convergence gives one)
        if rates is not None:
            for i, q in enumerate(rates["quantity"]):
                out["alpha_%s" % q] = (float(rates["alpha"][i]), None, None)
    if experiment == "ensemble":
        records = rnlib.read_csv(path, "records.csv", required=False)
        if records is not None and len(records["step"]):
            last = records["step"] == records["step"].max()
            deepest = last & (records["N"] == records["N"][last].max())
            out["final_loss"] = (_mean_at(records, "risk", deepest), None, None)
    elif experiment == "cifar":
        epochs = rnlib.read_csv(path, "epochs.csv", required=False)
        if epochs is not None and len(epochs["epoch"]):
            out["final_loss"] = (_mean_at(epochs, "train_loss", epochs["epoch"] == epochs["epoch"].max()), None, None)
        final = rnlib.read_csv(path, "final.csv", required=False)
        n_test = rnlib.test_count(path)
        if final is not None and len(final["test_acc"]):
            for model in sorted(set(final["model"])):
                for N in sorted(set(final["N"][final["model"] == model])):
                    acc = final["test_acc"][(final["model"] == model) & (final["N"] == N)]
                    key = "test_acc_ode" if model == "ode" else "test_acc_N%d" % N
                    mean = float(np.mean(acc))
                    half = rnlib.Z95 * np.sqrt(max(mean * (1 - mean), 0) / (n_test * len(acc))) if n_test else None
                    out[key] = (mean, mean - half if half else None, mean + half if half else None)
    elif experiment == "annulus":
        acc = rnlib.read_csv(path, "accuracy.csv", required=False)
        if acc is not None:
            for i, N in enumerate(acc["N"]):
                key = "test_acc_ode" if acc["model"][i] == "ode" else "test_acc_N%d" % N
                out[key] = (float(acc["mean_test_acc"][i]), None, None)
    start, end = parse_time(m.get("start")), parse_time(m.get("end"))
    if start is not None and end is not None:
        out["wall_s"] = (float(end - start), None, None)
    rss = m.get("peak_rss_mb")
    if isinstance(rss, list) and rss:
        out["peak_rss_mb"] = (float(max(rss)), None, None)
    return {k: v for k, v in out.items() if v[0] is not None}


# --- files

def artifacts(path):
    """[(name, bytes, kind)]: the run's files, and its subdirectories as one row each."""
    rows = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.name.startswith(".") or ".tmp" in entry.name:
            continue
        if entry.is_dir(follow_symlinks=False):
            size = 0
            for root, _, files in os.walk(entry.path):
                for f in files:
                    try:
                        size += os.path.getsize(os.path.join(root, f))
                    except OSError:
                        pass
            rows.append((entry.name + "/", size, "directory"))
        else:
            ext = os.path.splitext(entry.name)[1].lstrip(".")
            kind = {"png": "plot", "csv": "table", "md": "report", "json": "manifest" if entry.name == "manifest.json" else "json",
                    "cfg": "config", "txt": "log", "log": "log", "h5": "hdf5"}.get(ext, ext or "file")
            rows.append((entry.name, entry.stat().st_size, kind))
    return rows


def fingerprint(path):
    """What changes when a run or its analysis writes: the newest mtime and the count of its files."""
    newest, count = 0, 0
    for entry in os.scandir(path):
        if entry.name.startswith("."):
            continue
        try:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime_ns)
        except OSError:
            continue
        count += 1
    return "%d/%d" % (newest, count)


def study_of(path):
    """(study directory, point name) of a study's point (STUDY/points/NAME with STUDY/study.json), else (None, None)."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(parent) == "points" and os.path.exists(os.path.join(os.path.dirname(parent), "study.json")):
        return os.path.dirname(parent), os.path.basename(os.path.abspath(path))
    return None, None


def read_run(path, stale_after=None):
    """Everything the index holds of one run: {run fields}, {params}, {metrics}, [artifacts]."""
    m = read_manifest(path)
    params = read_config(path)
    status, why = liveness(path, m, stale_after)
    beat = m.get("heartbeat") if isinstance(m.get("heartbeat"), dict) else {}
    study, point = study_of(path)
    run = {
        "experiment": m.get("experiment"), "status": status, "raw_status": m.get("status"),
        "reason": why if status == "stale" else m.get("reason", ""), "start": m.get("start"), "end": m.get("end") or None,
        "heartbeat": beat.get("time"), "steps_done": beat.get("steps_done"), "steps_total": beat.get("steps_total"),
        "units_started": beat.get("units_started"), "units_total": beat.get("units_total"),
        "hosts": m.get("rank_hosts", m.get("host")), "ranks": m.get("ranks"), "groups": m.get("groups"),
        "git_commit": m.get("git_commit"), "build": m.get("build"), "resnode_version": m.get("resnode_version"),
        "manifest_version": m.get("manifest_version", 1), "study": study, "point": point, "seed": m.get("seed"),
    }
    metrics = catalogue_metrics(path, m["experiment"], m) if m.get("status") in ("done", "preempted", "failed", "running") else {}
    return run, params, metrics, artifacts(path)
