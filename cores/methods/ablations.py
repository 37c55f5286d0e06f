"""The paper's ablations of SEC (its table of loss combinations on VOC 2012 val): the seeding
loss alone, with the expansion loss, or with the constrain-to-boundary loss, on SEC's cues,
network and schedule; each its own method, so that its snapshots are its own."""
from cores.methods import Row, register
from cores.methods.sec import SEC


class Ablation(SEC):
    defaults = {}                      # SEC's keys: SEC owns them
    flag = property(lambda self: "--stage " + self.name)


class Seed(Ablation):
    name = "seed"
    order = 10
    help = "SEC's ablation: the seeding loss alone"
    losses = ("seed",)
    rows = [Row("S")]


class SeedExpand(Ablation):
    name = "seed_expand"
    order = 11
    help = "SEC's ablation: seeding and expansion losses"
    losses = ("seed", "expand")
    rows = [Row("SE")]


class SeedConstrain(Ablation):
    name = "seed_constrain"
    order = 12
    help = "SEC's ablation: seeding and constrain-to-boundary losses"
    losses = ("seed", "constrain")
    rows = [Row("SC")]


for _method in (Seed, SeedExpand, SeedConstrain):
    register(_method())
