"""Train a plain torch model in the overlap metric: python torch_dataset.py DATA.h5 [EPOCHS].

Per l = 0 key a tiny MLP maps an invariant descriptor of each atom to its coefficients; l > 0 stays zero.
"""

import sys

import torch
from torch.utils.data import DataLoader

from rho_data.torch_dataset import RhoTorchDataset, batch_overlap_loss, blocks_to_flat, collate

data, epochs = RhoTorchDataset(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 50
loader = DataLoader(data, batch_size=8, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
torch.manual_seed(0)
l0 = {name: shape[1] for name, shape in data.key_shapes.items() if name.startswith("l0_")}


def descriptor(batch: dict) -> torch.Tensor:
    """Per atom: sum of exp(-r) over the other atoms of its structure, one column per element."""
    same = batch["system"][:, None] == batch["system"][None, :]
    weight = torch.exp(-torch.cdist(batch["positions"], batch["positions"])) * same * (1 - torch.eye(len(same)))
    return torch.stack([weight[:, batch["numbers"] == z].sum(1) for z in data.elements], 1)


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        mlp = lambda n: torch.nn.Sequential(torch.nn.Linear(len(data.elements), 16), torch.nn.Tanh(), torch.nn.Linear(16, n))  # noqa: E731
        self.heads = torch.nn.ModuleDict({name: mlp(n) for name, n in l0.items()})

    def forward(self, batch: dict) -> torch.Tensor:
        x, blocks = descriptor(batch), {}
        for name, atoms in batch["block_atoms"].items():
            shape = (len(atoms), *data.key_shapes[name])
            blocks[name] = self.heads[name](x[atoms]).reshape(shape) if name in l0 else x.new_zeros(shape)
        return blocks_to_flat(blocks, batch["block_index"], len(batch["coefficients"]))


model = Model().double()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(epochs):
    total = 0.0
    for batch in loader:
        optimizer.zero_grad()
        (loss := batch_overlap_loss(model(batch), batch) / len(batch["labels"])).backward()  # per structure
        optimizer.step()
        total += loss.item() * len(batch["labels"])
    print(f"epoch {epoch} overlap-metric loss per structure {total / len(data):.6g}")
