"""keras_cnn.py: the Keras MNIST CNN in PyTorch, the model hd-gpu's default spec builds, for the bench/ scripts
that run it beside hd-gpu (pytorch_ref.py, memory_pytorch.py). Import it after the thread environment is set:
it imports torch."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """The Keras MNIST CNN: 1@28x28 -> 32@26x26 -> 32@13x13 -> 64@11x11 -> 64@5x5 -> 1600 -> 128 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.dense1 = nn.Linear(1600, 128)
        self.dropout = nn.Dropout(0.5)
        self.dense2 = nn.Linear(128, 10)
        for layer in (self.conv1, self.conv2, self.dense1, self.dense2):
            nn.init.xavier_uniform_(layer.weight)  # Glorot uniform, as Keras
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.dense1(x)))
        return self.dense2(x)
