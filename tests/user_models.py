"""Networks defined outside winit, for `--model tests/user_models.py:NAME` in the tests,
the README and benchmarks/ (not collected by pytest: no test_ prefix)."""

import torch
from torch import nn
from torch.nn import functional as F


class TinyMLP(nn.Module):
    """Linear -> ReLU, `depth` times, and a head."""

    def __init__(self, features: int = 2, width: int = 64, depth: int = 4, num_classes: int = 3):
        super().__init__()
        layers, size = [], features
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def make_mlp(features: int = 2, width: int = 32, num_classes: int = 3) -> nn.Module:
    """A factory function, as torchvision.models.resnet18 is."""
    return TinyMLP(features, width, 2, num_classes)


class ResidualMLP(nn.Module):
    """x + relu(fc(x)) blocks: the activation is functional and a sum follows."""

    def __init__(self, features: int = 2, width: int = 64, blocks: int = 3, num_classes: int = 3):
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = x + F.relu(block(x))
        return self.head(x)


class BasicBlock(nn.Module):
    """A ResNet basic block (He et al. 2016): conv-bn-relu-conv-bn, plus the skip, relu."""

    def __init__(self, channels_in: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or channels_in != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """resnet18's layout (torchvision.models.resnet18: 2 basic blocks at each of 4 widths),
    for where torchvision cannot be installed; `width` scales the channels (64 in resnet18)."""

    def __init__(self, num_classes: int = 10, width: int = 64, blocks: int = 2, channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, size = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            out = width * mult
            stage = [BasicBlock(size, out, 1 if i == 0 else 2)]
            stage += [BasicBlock(out, out) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            size = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(size, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TransformerClassifier(nn.Module):
    """nn.TransformerEncoder over a sequence of `tokens` vectors of `features` values: a
    linear embedding, a learned position embedding, mean pooling and a head."""

    def __init__(
        self,
        features: int = 16,
        tokens: int = 8,
        d_model: int = 64,
        nhead: int = 4,
        layers: int = 2,
        num_classes: int = 3,
    ):
        super().__init__()
        self.tokens, self.features = tokens, features
        self.embed = nn.Linear(features, d_model)
        self.position = nn.Parameter(torch.zeros(tokens, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        x = x.reshape(len(x), self.tokens, self.features)
        x = self.encoder(self.embed(x) + self.position)
        return self.head(x.mean(dim=1))


class NoWeights(nn.Module):
    def forward(self, x):
        return x


class BadForward(nn.Module):
    """Its second layer expects 100 inputs and gets 64."""

    def __init__(self, features: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(features, 64)
        self.fc2 = nn.Linear(100, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def not_a_module():
    return 42


class DropoutMLP(nn.Module):
    """Linear -> Dropout -> ReLU: a dropout between a layer and its activation."""

    def __init__(self, features: int = 2, width: int = 256, num_classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(features, width)
        self.drop = nn.Dropout(0.5)
        self.act = nn.ReLU()
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.act(self.drop(self.fc(x))))


class InplaceResidual(nn.Module):
    """`out += x`: an in-place sum between a layer and the activation module after it."""

    def __init__(self, features: int = 16, num_classes: int = 3):
        super().__init__()
        self.fc1 = nn.Linear(features, features)
        self.act = nn.ReLU()
        self.head = nn.Linear(features, num_classes)

    def forward(self, x):
        out = self.fc1(x)
        out += x
        return self.head(self.act(out))


class InplaceTanh(nn.Module):
    """`h.tanh_()`: an activation applied in place, in the forward."""

    def __init__(self, features: int = 16, num_classes: int = 3):
        super().__init__()
        self.fc1 = nn.Linear(features, 256)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        h = self.fc1(x)
        h.tanh_()
        return self.fc2(h)


class SharedTanh(nn.Module):
    """One nn.Tanh module after both hidden layers."""

    def __init__(self, features: int = 16, width: int = 256, num_classes: int = 3):
        super().__init__()
        self.fc1 = nn.Linear(features, width)
        self.fc2 = nn.Linear(width, width)
        self.act = nn.Tanh()
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.act(self.fc2(self.act(self.fc1(x)))))


class KeywordInput(nn.Module):
    def __init__(self, features: int = 16, num_classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x):
        return self.fc(input=x)


def eval_mode_bn(features: int = 16, width: int = 256, num_classes: int = 3) -> nn.Module:
    """A Linear, a batchnorm and a relu, returned in eval mode (the norm then uses its
    running statistics, an identity at init)."""
    return nn.Sequential(
        nn.Linear(features, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, num_classes)
    ).eval()


class TwoHeads(nn.Module):
    """Two readouts of one hidden layer, summed: winit cannot tell which is the readout."""

    def __init__(self, features: int = 2, width: int = 64, num_classes: int = 3):
        super().__init__()
        self.hidden = nn.Linear(features, width)
        self.head_a, self.head_b = nn.Linear(width, num_classes), nn.Linear(width, num_classes)

    def forward(self, x):
        h = torch.relu(self.hidden(x))
        return self.head_a(h) + self.head_b(h)


class Tied(TinyMLP):
    """TinyMLP whose head is also reachable as `alias`."""

    def __init__(self, features: int = 2, width: int = 64, num_classes: int = 3):
        super().__init__(features, width, 2, num_classes)
        self.alias = self.head


class Doubled(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


class ScaledHead(TinyMLP):
    """TinyMLP whose head is a subclass of nn.Linear with a forward of its own."""

    def __init__(self, features: int = 2, width: int = 64, num_classes: int = 3):
        super().__init__(features, width, 2, num_classes)
        self.head = Doubled(width, num_classes)


class EvenWidth(TinyMLP):
    """TinyMLP that only takes an even width."""

    def __init__(self, features: int = 2, width: int = 64, num_classes: int = 3):
        if width % 2:
            raise ValueError(f"width must be even; got {width}")
        super().__init__(features, width, 2, num_classes)
