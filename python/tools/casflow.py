from metaflow import FlowSpec, step


class CasFlow(FlowSpec):
    @step
    def start(self):
        import numpy as np
        self.small = {"a": 1, "b": [1, 2, 3]}
        self.text = "metaflow " * 100000
        self.arr = np.random.default_rng(1).random(2_000_000)  # 16 MB, above the fused-path size
        self.raw_like = np.random.default_rng(2).bytes(300_000)  # the same in every run: runs compare by digest
        self.items = list(range(3))
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.sq = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.sq for i in inputs)
        self.merge_artifacts(inputs, include=["arr", "small", "text"])
        self.next(self.end)

    @step
    def end(self):
        import cas_h_probe  # noqa: F401  (reports whether cas.h was in use in this task)
        print("total", self.total, "arr sum %.6f" % self.arr.sum(), "len text", len(self.text))


if __name__ == "__main__":
    CasFlow()
