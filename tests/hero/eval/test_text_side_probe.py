"""The text-side probe (`hero.eval.baselines.probe`): the text-only baselines with another encoder's text side."""

import pytest
import torch

from hero.eval.baselines.encoder import MiniLMEncoder
from hero.eval.baselines.probe import main


def test_a_given_text_side_is_pooled_as_minilm_is():
    reference = MiniLMEncoder()
    texts = ["Alice: I will take the cup.", "so i am peeling the cucumber"]
    same = MiniLMEncoder(model=reference.model, tokenizer=reference.tokenizer, tokens=reference.tokens)
    torch.testing.assert_close(same.encode(texts), reference.encode(texts))
    # a changed text side gives other embeddings (the probe measures the encoder it is given)
    changed = MiniLMEncoder()
    with torch.no_grad():
        changed.model.cross.layers[-1].mlp.fc2.weight.mul_(-1.0)
    assert (changed.encode(texts) - reference.encode(texts)).abs().max() > 1e-2


def test_partial_text_side_arguments_and_at_init_without_a_run_are_refused(tmp_path):
    reference = MiniLMEncoder()
    with pytest.raises(TypeError, match="together"):
        MiniLMEncoder(model=reference.model)
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "manifest.json"), "--at-init"])
    assert err.value.code == 2
