"""Grad-CAM, guided backpropagation and vanilla saliency as the papers' reference scripts and
pytorch-grad-cam write them, on a small CNN trained to tell three synthetic shapes apart
(filled square, plus, X) placed anywhere on a noisy 16x16 canvas.

Grad-CAM: ``register_forward_hook`` storing ``output.detach()`` and ``register_full_backward_hook``
storing ``grad_output[0]`` on the last conv block, weights by ``F.adaptive_avg_pool2d(grads, 1)``,
``F.relu((weights * activations).sum(dim=1, keepdim=True))``, upsampled by
``F.interpolate(mode='bilinear', align_corners=False)`` and min-max normalised; the same CAM
again by pytorch-grad-cam's ``output.register_hook`` and by ``torch.autograd.grad`` on the
activations (all three ``torch.allclose``). Guided backprop: ``register_full_backward_hook`` on
every ``nn.ReLU`` returning ``(torch.clamp(grad_in[0], min=0.0),)``; Guided Grad-CAM as their
product. Vanilla saliency by ``x.requires_grad_()`` and ``x.grad.abs().amax(dim=1)``. The CAM's
peak must land on the object, and the saliency's mass must lie on it.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

SIZE, SHAPE = 16, 5
CLASSES = ("square", "plus", "x")
rng = np.random.RandomState(7)


def draw(kind):
    glyph = np.zeros((SHAPE, SHAPE), dtype=np.float32)
    if kind == 0:
        glyph[:] = 1.0
    elif kind == 1:
        glyph[SHAPE // 2, :] = 1.0
        glyph[:, SHAPE // 2] = 1.0
    else:
        glyph[np.arange(SHAPE), np.arange(SHAPE)] = 1.0
        glyph[np.arange(SHAPE), SHAPE - 1 - np.arange(SHAPE)] = 1.0
    return glyph


def make(n):
    images = 0.25 * rng.randn(n, 1, SIZE, SIZE).astype(np.float32)
    labels = rng.randint(0, 3, size=n)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i in range(n):
        top, left = rng.randint(0, SIZE - SHAPE + 1, size=2)
        images[i, 0, top:top + SHAPE, left:left + SHAPE] += draw(labels[i])
        boxes[i] = (top, left, top + SHAPE, left + SHAPE)
    return torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(boxes)


x_train, y_train, _ = make(768)
x_test, y_test, box_test = make(96)


class SmallCNN(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.block2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.block2(self.pool(self.block1(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


model = SmallCNN()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
for epoch in range(1, 7):
    model.train()
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * images.size(0)
    if epoch % 2 == 0:
        print(f"epoch {epoch} loss {total / len(x_train):.4f}")

model.eval()
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {accuracy:.3f}")


class GradCAM:
    """Grad-CAM by module hooks on ``target_layer``, as the paper's reference ports write it."""

    def __init__(self, model, target_layer):
        self.model = model
        self.activations = None
        self.gradients = None
        self.handles = [target_layer.register_forward_hook(self.save_activation),
                        target_layer.register_full_backward_hook(self.save_gradient)]

    def save_activation(self, module, input, output):
        self.activations = output.detach()

    def save_gradient(self, module, grad_input, grad_output):
        self.gradients = grad_output[0].detach()

    def __call__(self, x, class_idx=None):
        self.model.zero_grad()
        logits = self.model(x)
        if class_idx is None:
            class_idx = logits.argmax(dim=1)
        one_hot = F.one_hot(class_idx, logits.size(1)).to(logits.dtype)
        (logits * one_hot).sum().backward()
        weights = F.adaptive_avg_pool2d(self.gradients, 1)
        cam = F.relu((weights * self.activations).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        flat = cam.view(cam.size(0), -1)
        low, high = flat.min(dim=1, keepdim=True)[0], flat.max(dim=1, keepdim=True)[0]
        return ((flat - low) / (high - low + 1e-8)).view_as(cam), class_idx

    def remove(self):
        for handle in self.handles:
            handle.remove()


class ActivationsAndGradients:
    """pytorch-grad-cam's way: a forward hook that registers a tensor hook on the output."""

    def __init__(self, model, target_layer):
        self.model = model
        self.gradients = []
        self.activations = []
        self.handle = target_layer.register_forward_hook(self.save_activation)

    def save_activation(self, module, input, output):
        self.activations.append(output.cpu().detach())

        def _store_grad(grad):
            self.gradients = [grad.cpu().detach()] + self.gradients

        output.register_hook(_store_grad)

    def __call__(self, x):
        self.gradients, self.activations = [], []
        return self.model(x)


gradcam = GradCAM(model, model.block2)
inputs = x_test.clone()
cam, predicted = gradcam(inputs)
print("cam shape", tuple(cam.shape), "activations", tuple(gradcam.activations.shape))

grabber = ActivationsAndGradients(model, model.block2)
model.zero_grad()
scores = grabber(inputs)
scores.gather(1, predicted[:, None]).sum().backward()
weights = grabber.gradients[0].mean(dim=(2, 3), keepdim=True)
cam2 = torch.relu((weights * grabber.activations[0]).sum(1, keepdim=True))
cam2 = F.interpolate(cam2, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
cam2 = cam2 - cam2.amin(dim=(2, 3), keepdim=True)
cam2 = cam2 / (cam2.amax(dim=(2, 3), keepdim=True) + 1e-8)
grabber.handle.remove()

features = model.block2(model.pool(model.block1(inputs)))
chosen = model.fc(torch.flatten(model.gap(features), 1)).gather(1, predicted[:, None]).sum()
(feature_grads,) = torch.autograd.grad(chosen, features)
cam3 = F.relu((feature_grads.mean((2, 3), keepdim=True) * features.detach()).sum(1, keepdim=True))
cam3 = F.interpolate(cam3, scale_factor=2, mode="bilinear", align_corners=False)
low3 = cam3.flatten(1).min(1).values.view(-1, 1, 1, 1)
cam3 = (cam3 - low3) / (cam3.flatten(1).max(1).values.view(-1, 1, 1, 1) - low3 + 1e-8)
print("tensor-hook CAM equals module-hook CAM:", torch.allclose(cam, cam2, atol=1e-5))
print("autograd.grad CAM equals module-hook CAM:", torch.allclose(cam3, cam, atol=1e-5))

# the CAM's peak must land on the object
peak = cam.view(cam.size(0), -1).argmax(dim=1)
rows, cols = torch.div(peak, SIZE, rounding_mode="floor"), peak % SIZE
inside = ((rows >= box_test[:, 0] - 1) & (rows < box_test[:, 2] + 1)
          & (cols >= box_test[:, 1] - 1) & (cols < box_test[:, 3] + 1))
correct = predicted == y_test
cam_hit = inside[correct].float().mean().item()
print(f"Grad-CAM peak on the object: {int(inside[correct].sum())} of {int(correct.sum())} correct predictions")

object_mask = torch.zeros(len(x_test), 1, SIZE, SIZE)
for i, (top, left, bottom, right) in enumerate(box_test.tolist()):
    object_mask[i, 0, top:bottom, left:right] = 1.0
cam_mass = ((cam * object_mask).sum((1, 2, 3)) / cam.sum((1, 2, 3))).mean().item()
print(f"CAM mass on the object {cam_mass:.3f} (the box is {SHAPE * SHAPE / SIZE ** 2:.3f} of the image)")
gradcam.remove()

# vanilla saliency: |d score / d x|, channel max
x = x_test[:16].clone().requires_grad_()
model.zero_grad()
out = model(x)
out.gather(1, out.argmax(1, keepdim=True)).sum().backward()
saliency = x.grad.abs().amax(dim=1)
saliency_mass = ((saliency * object_mask[:16, 0]).sum((1, 2)) / saliency.sum((1, 2))).mean().item()
print("saliency shape", tuple(saliency.shape), f"mass on the object {saliency_mass:.3f}")


# guided backprop: only positive gradients through positive activations
def relu_backward_hook(module, grad_in, grad_out):
    return (torch.clamp(grad_in[0], min=0.0),)


calls = [0]


def counting_hook(module, grad_in, grad_out):
    calls[0] += 1


handles = []
for module in model.modules():
    if isinstance(module, nn.ReLU):
        handles.append(module.register_full_backward_hook(relu_backward_hook))
        handles.append(module.register_full_backward_hook(counting_hook))
print("guided ReLU hooks", len(handles) // 2)

x = x_test[:16].clone().requires_grad_(True)
model.zero_grad()
out = model(x)
target = out.argmax(dim=1)
out.backward(gradient=F.one_hot(target, 3).float())
guided = x.grad.detach().clone()
print("hook calls per backward", calls[0])
for handle in handles:
    handle.remove()

# the same by a custom autograd.Function in place of each ReLU
class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp):
        ctx.save_for_backward(inp)
        return inp.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (inp,) = ctx.saved_tensors
        return grad_output * (inp > 0).type_as(grad_output) * (grad_output > 0).type_as(grad_output)


def guided_forward(x):
    h = x
    for block in (model.block1, nn.Sequential(model.pool), model.block2):
        for layer in block:
            h = GuidedReLU.apply(h) if isinstance(layer, nn.ReLU) else layer(h)
    return model.fc(torch.flatten(model.gap(h), 1))


x2 = x_test[:16].clone().requires_grad_(True)
(grad_fn_guided,) = torch.autograd.grad((guided_forward(x2) * F.one_hot(target, 3)).sum(), x2)
print("hook guided backprop equals Function guided backprop:", torch.allclose(guided, grad_fn_guided, atol=1e-6))

guided_gradcam = guided * cam[:16]
positive = (guided > 0).float().mean().item()
guided_mass = ((guided_gradcam.abs() * object_mask[:16]).sum((1, 2, 3))
               / guided_gradcam.abs().sum((1, 2, 3))).mean().item()
print(f"guided backprop: {positive:.3f} positive, Guided Grad-CAM mass on the object {guided_mass:.3f}")
calls[0] = 0
model(x_test[:2].clone().requires_grad_()).sum().backward()
print("calls after removing the hooks", calls[0])

print(f"FINAL accuracy={accuracy:.4f} cam_hit={cam_hit:.4f} cam_mass={cam_mass:.4f} "
      f"saliency_mass={saliency_mass:.4f} guided_mass={guided_mass:.4f}")
