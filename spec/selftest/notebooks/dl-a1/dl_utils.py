"""Small helpers for assignment 1 (gradient checks)."""
import torch


def rel_error(a, b, eps=1e-12):
    """||a - b|| / max(||a||, ||b||, eps) (Frobenius norms), as a python float."""
    a = torch.as_tensor(a).detach().to(torch.float64)
    b = torch.as_tensor(b).detach().to(torch.float64)
    denom = max(a.norm().item(), b.norm().item(), eps)
    return (a - b).norm().item() / denom


def compare_grads(g1, g2, tol=1e-6, label=""):
    """Print the relative error for every key of two gradient dicts and assert it is below tol."""
    worst = 0.0
    for k in g1:
        err = rel_error(g1[k], g2[k])
        worst = max(worst, err)
        print(f"  {label} {k:>3}: rel. error {err:.2e}")
        assert g1[k].shape == g2[k].shape, (k, g1[k].shape, g2[k].shape)
        assert err < tol, f"{k}: {err} >= {tol}"
    return worst
