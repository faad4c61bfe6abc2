"""conf/long (`kedro run --env long`) changes the pretraining budget and nothing else."""


def test_long_env_changes_only_the_pretraining_steps(conf_params):
    base, long = conf_params("local"), conf_params("long")
    assert long["pretrain"]["run"]["train"]["max_steps"] == 1000 > base["pretrain"]["run"]["train"]["max_steps"]
    long["pretrain"]["run"]["train"].update(max_steps=base["pretrain"]["run"]["train"]["max_steps"],
                                            ckpt_every=base["pretrain"]["run"]["train"]["ckpt_every"])
    assert long == base
