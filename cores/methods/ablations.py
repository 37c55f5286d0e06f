"""The paper's ablations of SEC (its table of loss combinations on VOC 2012 val): the seeding
loss alone, with the expansion loss, or with the constrain-to-boundary loss, on SEC's cues,
network and schedule; each its own method, so that its snapshots are its own."""
from cores.methods import Row, register
from cores.methods.sec import SEC


class Ablation(SEC):
    defaults = {}                      # SEC's keys: SEC owns them
    flag = property(lambda self: "--stage " + self.name)


# (name, its place in listings, its losses, its row, what it is)
ABLATIONS = [("seed", 10, ("seed",), "S", "the seeding loss alone"),
             ("seed_expand", 11, ("seed", "expand"), "SE", "seeding and expansion losses"),
             ("seed_constrain", 12, ("seed", "constrain"), "SC",
              "seeding and constrain-to-boundary losses")]

for _name, _order, _losses, _row, _what in ABLATIONS:
    register(type("Ablation_" + _name, (Ablation,), dict(
        name=_name, order=_order, losses=_losses, rows=[Row(_row)],
        help="SEC's ablation: " + _what))())
