from metaflow import FlowSpec, Parameter, step


class GcFlow(FlowSpec):
    """Runs that share some values and not others: what a prune + gc frees is each
    pruned run's own (its seed's array), never what the kept run also names."""

    seed = Parameter("seed", default=1, type=int)

    @step
    def start(self):
        import numpy as np
        self.shared = np.random.default_rng(0).bytes(500_000)  # the same in every run
        self.own = np.random.default_rng(self.seed).random(250_000)  # 2 MB, this run's alone
        self.parts = list(range(2))
        self.next(self.part, foreach="parts")

    @step
    def part(self):
        self.val = (self.input + 1) * self.seed
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.val for i in inputs)
        self.merge_artifacts(inputs, include=["own", "shared"])
        self.next(self.end)

    @step
    def end(self):
        print("seed", self.seed, "total", self.total, "own sum %.6f" % self.own.sum())


if __name__ == "__main__":
    GcFlow()
