# Writes the torch-made fixtures the Go tests read (run once with torch 2.11; the outputs are committed):
#   views.pth:  a training-checkpoint-like nested dict whose tensors are views sharing storages, an nn.Parameter,
#               float16 and a strided bfloat16 slice, plus non-tensor entries.
#   views_p4.pth: the same with pickle protocol 4 (frames, STACK_GLOBAL, MEMOIZE).
#   legacy.pth: the same kind of state dict in the pre-1.6 non-zip format, which the reader must reject clearly.
import collections
import torch

full = torch.arange(24, dtype=torch.float32).reshape(4, 6) + 0.5
param = torch.nn.Parameter(torch.arange(15, dtype=torch.float32).reshape(3, 5) * 0.25 - 1)
model = collections.OrderedDict(
    full=full,                      # storage A, contiguous
    t=full[1:].t(),                 # storage A, offset 6, stride (1, 6)
    col=full[:, 2],                 # storage A, offset 2, stride (6,)
    row=full[3],                    # storage A, offset 18, contiguous
    p=param,                        # nn.Parameter
    h=full.half(),                  # float16
    b=full.bfloat16()[:, 1:4],      # bfloat16, offset 1, stride (6, 1)
)
torch.save({"model": model, "epoch": 3, "args": {"lr": 1e-3}, "lst": [full[0]]}, "views.pth")
torch.save({"model": model, "epoch": 3, "args": {"lr": 1e-3}, "lst": [full[0]]}, "views_p4.pth", pickle_protocol=4)
torch.save(collections.OrderedDict(full=full), "legacy.pth", _use_new_zipfile_serialization=False)
