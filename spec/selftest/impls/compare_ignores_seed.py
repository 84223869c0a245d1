"""Wrong on purpose (moons.deep only): the architecture comparison ignores the seed of the row: every
row is the run of seed 0 (data and initial weights), labelled with another seed."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import first_to_last_grad_ratio, make_moons_net, train_moons
from impl.moons import ACTIVATIONS, two_moons


def compare_architectures(depths=(3, 6), seeds=(0, 1, 2, 3, 4), *, width=16, steps=300, lr=0.01):
    rows = []
    for depth in depths:
        for seed in seeds:
            data = two_moons(seed=0)
            for activation in ACTIVATIONS:
                model = make_moons_net(width, depth, activation, 0)
                history = train_moons(model, data, steps=steps, lr=lr, seed=0)
                rows.append({"activation": activation, "depth": depth, "seed": seed,
                             "test_accuracy": history.test_accuracy, "final_loss": history.loss[-1],
                             "grad_ratio_at_init": first_to_last_grad_ratio(history)})
    return rows
