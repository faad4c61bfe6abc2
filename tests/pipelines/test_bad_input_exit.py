"""`kedro run` with a misspelled parameter key ends with one `error:` line naming the key (and what was meant) and
exit status 2, no traceback; HERO_DEBUG=1 keeps the traceback; an error that is not bad input keeps it too."""

import subprocess
import sys

import pytest

from hero.config import ConfigError
from hero.corpus.errors import CorpusError
from pipelines.hooks import BadInputExit, bad_input

RUN = [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines=pretrain",
       "--params=corpus.synthetic.videoz=3"]   # fails in the first node, before any corpus is generated


def test_a_misspelled_key_is_one_line_and_exit_2(project, kedro_env):
    out = subprocess.run(RUN, cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    last = (out.stdout + out.stderr).strip().splitlines()[-1]
    assert last.startswith("error: corpus.synthetic.videoz: unknown key (did you mean 'num_videos'?"), last
    assert "Traceback" not in out.stdout + out.stderr

    debug = subprocess.run(RUN, cwd=project, env=kedro_env({"HERO_DEBUG": "1"}), capture_output=True, text=True,
                           timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_bad_input_is_found_through_the_chain_and_nothing_else_is():
    try:
        try:
            raise CorpusError("data/subs.jsonl", "subtitle.end_before_start", "end 3.0 < start 4.5", line=3)
        except CorpusError as inner:
            raise RuntimeError("Failed while loading data from dataset x") from inner
    except RuntimeError as wrapped:
        assert isinstance(bad_input(wrapped), CorpusError)
    assert bad_input(ValueError("a bug")) is None
    BadInputExit().on_pipeline_error(ValueError("a bug"))        # returns: Kedro re-raises with its traceback
    with pytest.raises(SystemExit) as stop:
        BadInputExit().on_pipeline_error(ConfigError("optim.lrr: unknown key"))
    assert stop.value.code == 2
