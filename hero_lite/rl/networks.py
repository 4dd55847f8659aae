"""The actor and critic MLPs of HAQ's DDPG in NumPy, forward and backward written by hand.

Networks (HAQ code `lib/rl/ddpg.py`, `Actor` and `Critic`), weights stored (fan_in, fan_out) so a
layer is y = x @ W + b:

    actor   mu(s) = sigmoid(w3 . relu(W2 . relu(W1 s + b1) + b2) + b3)          s -> 300 -> 300 -> 1
    critic  Q(s, a) = w3 . relu(W2 . relu(W11 s + b11 + W12 a + b12) + b2) + b3   (s, a) -> 300 -> 300 -> 1

The action enters the critic's first hidden layer as a sum. Every weight and bias starts
U(+-1/sqrt(fan_in)) (PyTorch `nn.Linear` default; HAQ's `init_w` is unused). Float64 throughout.

hero-lite adds an episode critic (not HAQ's; see `hero_lite.rl.ddpg`) of an episode's T actions,

    Q(a_1..a_T) = w3 . relu(W2 . relu(W1 a + b1) + b2) + b3            a -> 300 -> 300 -> 1.

Each network keeps its parameters in one flat vector (`ParamVector`) and its gradient in another of
the same layout, so Adam and the soft update act on one contiguous array. `backward` writes the
parameter gradient of a loss with the given dL/d(output) into `grad`; `action_gradient` gives
dQ/da, which the actor step follows.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit


class ParamVector:
    """Parameters of one network in a single flat float64 vector, with a named view per tensor.

    Adam and the soft update then act on one contiguous array.

    Parameters
    ----------
    spec : list of (name, shape, fan_in); the order fixes the layout and the init draws.
    """

    def __init__(self, spec: list[tuple[str, tuple[int, ...], int]]):
        self.spec = list(spec)
        sizes = [math.prod(shape) for _, shape, _ in self.spec]
        self.flat = np.zeros(sum(sizes), dtype=np.float64)
        self.views = self.make_views(self.flat)

    def make_views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into `flat` (same layout as `self.flat`), e.g. into a gradient vector."""
        views, offset = {}, 0
        for name, shape, _ in self.spec:
            size = math.prod(shape)
            views[name] = flat[offset:offset + size].reshape(shape)
            offset += size
        return views

    def init_uniform(self, rng: np.random.Generator) -> None:
        """PyTorch `nn.Linear` default init: every tensor ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        for name, shape, fan_in in self.spec:
            bound = 1.0 / math.sqrt(fan_in)
            self.views[name][...] = rng.uniform(-bound, bound, size=shape)


class Actor:
    """mu(s) = sigmoid(relu(relu(s W1 + b1) W2 + b2) w3 + b3), s -> hidden1 -> hidden2 -> 1."""

    def __init__(self, n_obs: int, hidden1: int, hidden2: int):
        self.params = ParamVector([("w1", (n_obs, hidden1), n_obs), ("b1", (hidden1,), n_obs),
                                   ("w2", (hidden1, hidden2), hidden1), ("b2", (hidden2,), hidden1),
                                   ("w3", (hidden2, 1), hidden2), ("b3", (1,), hidden2)])
        self.grad = np.zeros_like(self.params.flat)
        self.grad_views = self.params.make_views(self.grad)

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Actions for a batch.

        Parameters
        ----------
        obs : (batch, n_obs) float64.

        Returns
        -------
        mu : (batch, 1) float64 in (0, 1).
        cache : what `backward` needs.
        """
        p = self.params.views
        g1 = np.maximum(obs @ p["w1"] + p["b1"], 0.0)
        g2 = np.maximum(g1 @ p["w2"] + p["b2"], 0.0)
        mu = expit(g2 @ p["w3"] + p["b3"])
        return mu, (obs, g1, g2, mu)

    def backward(self, cache: tuple, d_mu: np.ndarray) -> np.ndarray:
        """Gradient of a loss with dL/dmu = `d_mu` (batch, 1), written into and returning `self.grad`."""
        obs, g1, g2, mu = cache
        g = self.grad_views
        p = self.params.views
        d_z = d_mu * mu * (1.0 - mu)  # sigmoid'
        np.matmul(g2.T, d_z, out=g["w3"])
        g["b3"][...] = d_z.sum(axis=0)
        d_g2 = (d_z @ p["w3"].T) * (g2 > 0.0)
        np.matmul(g1.T, d_g2, out=g["w2"])
        g["b2"][...] = d_g2.sum(axis=0)
        d_g1 = (d_g2 @ p["w2"].T) * (g1 > 0.0)
        np.matmul(obs.T, d_g1, out=g["w1"])
        g["b1"][...] = d_g1.sum(axis=0)
        return self.grad


class Critic:
    """Q(s, a) = relu(relu(s W11 + b11 + a W12 + b12) W2 + b2) w3 + b3 (action summed into layer 1)."""

    def __init__(self, n_obs: int, hidden1: int, hidden2: int):
        self.params = ParamVector([("w11", (n_obs, hidden1), n_obs), ("b11", (hidden1,), n_obs),
                                   ("w12", (1, hidden1), 1), ("b12", (hidden1,), 1),
                                   ("w2", (hidden1, hidden2), hidden1), ("b2", (hidden2,), hidden1),
                                   ("w3", (hidden2, 1), hidden2), ("b3", (1,), hidden2)])
        self.grad = np.zeros_like(self.params.flat)
        self.grad_views = self.params.make_views(self.grad)

    def forward(self, obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Q-values for a batch.

        Parameters
        ----------
        obs : (batch, n_obs) float64.
        actions : (batch, 1) float64.

        Returns
        -------
        q : (batch, 1) float64.
        cache : what `backward` and `action_gradient` need.
        """
        p = self.params.views
        h1 = np.maximum(obs @ p["w11"] + p["b11"] + actions * p["w12"] + p["b12"], 0.0)
        h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0.0)
        q = h2 @ p["w3"] + p["b3"]
        return q, (obs, actions, h1, h2)

    def _deltas(self, cache: tuple, d_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dL/d(pre-activation) of both hidden layers for dL/dQ = `d_q` (batch, 1)."""
        _, _, h1, h2 = cache
        p = self.params.views
        delta2 = (d_q @ p["w3"].T) * (h2 > 0.0)
        delta1 = (delta2 @ p["w2"].T) * (h1 > 0.0)
        return delta1, delta2

    def backward(self, cache: tuple, d_q: np.ndarray) -> np.ndarray:
        """Parameter gradient for dL/dQ = `d_q` (batch, 1), written into and returning `self.grad`.

        By the chain rule through the network above: dw3 = h2^T dQ; delta2 = (dQ w3^T) * 1[h2 > 0];
        dW2 = h1^T delta2; delta1 = (delta2 W2^T) * 1[h1 > 0]; dW11 = s^T delta1; dW12 = a^T delta1;
        db11 = db12 = sum delta1.
        """
        obs, actions, h1, h2 = cache
        g = self.grad_views
        delta1, delta2 = self._deltas(cache, d_q)
        np.matmul(h2.T, d_q, out=g["w3"])
        g["b3"][...] = d_q.sum(axis=0)
        np.matmul(h1.T, delta2, out=g["w2"])
        g["b2"][...] = delta2.sum(axis=0)
        np.matmul(obs.T, delta1, out=g["w11"])
        np.matmul(actions.T, delta1, out=g["w12"])
        g["b11"][...] = delta1.sum(axis=0)
        g["b12"][...] = g["b11"]
        return self.grad

    def action_gradient(self, cache: tuple) -> np.ndarray:
        """dQ/da for each sample of the batch the cache came from, (batch, 1) float64.

        dQ/da = delta1' W12^T with delta1' the hidden-1 delta for dQ = 1.
        """
        delta1, _ = self._deltas(cache, np.ones((cache[0].shape[0], 1)))
        return delta1 @ self.params.views["w12"].T


class EpisodeCritic:
    """Q(a) = relu(relu(a W1 + b1) W2 + b2) w3 + b3 of an episode's T actions (module docstring)."""

    def __init__(self, n_steps: int, hidden1: int, hidden2: int):
        self.params = ParamVector([("w1", (n_steps, hidden1), n_steps), ("b1", (hidden1,), n_steps),
                                   ("w2", (hidden1, hidden2), hidden1), ("b2", (hidden2,), hidden1),
                                   ("w3", (hidden2, 1), hidden2), ("b3", (1,), hidden2)])
        self.grad = np.zeros_like(self.params.flat)
        self.grad_views = self.params.make_views(self.grad)

    def forward(self, actions: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Q-values for a batch of episodes.

        Parameters
        ----------
        actions : (batch, T) float64, the actions of each episode in step order.

        Returns
        -------
        q : (batch, 1) float64.
        cache : what `backward` and `action_gradient` need.
        """
        p = self.params.views
        h1 = np.maximum(actions @ p["w1"] + p["b1"], 0.0)
        h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0.0)
        return h2 @ p["w3"] + p["b3"], (actions, h1, h2)

    def _deltas(self, cache: tuple, d_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dL/d(pre-activation) of both hidden layers for dL/dQ = `d_q` (batch, 1)."""
        _, h1, h2 = cache
        p = self.params.views
        delta2 = (d_q @ p["w3"].T) * (h2 > 0.0)
        return (delta2 @ p["w2"].T) * (h1 > 0.0), delta2

    def backward(self, cache: tuple, d_q: np.ndarray) -> np.ndarray:
        """Parameter gradient for dL/dQ = `d_q` (batch, 1), written into and returning `self.grad`."""
        actions, h1, h2 = cache
        g = self.grad_views
        delta1, delta2 = self._deltas(cache, d_q)
        np.matmul(h2.T, d_q, out=g["w3"])
        g["b3"][...] = d_q.sum(axis=0)
        np.matmul(h1.T, delta2, out=g["w2"])
        g["b2"][...] = delta2.sum(axis=0)
        np.matmul(actions.T, delta1, out=g["w1"])
        g["b1"][...] = delta1.sum(axis=0)
        return self.grad

    def action_gradient(self, cache: tuple) -> np.ndarray:
        """dQ/da_t for every episode and step of the batch the cache came from, (batch, T) float64."""
        delta1, _ = self._deltas(cache, np.ones((cache[0].shape[0], 1)))
        return delta1 @ self.params.views["w1"].T
