"""The "Deep Learning with PyTorch: A 60 Minute Blitz" tutorials and the Learn-the-Basics Tensors and
Autograd pages (pytorch.org), in order: tensors (``torch.tensor(data)``, ``from_numpy``,
``ones_like``/``rand_like(dtype=torch.float)``, f-strings of tensors, ``tensor[:, 1] = 0``,
``torch.cat(dim=1)``, ``@``/``matmul(out=)``/``mul(out=)``, ``sum().item()``, ``add_``, the NumPy
bridge sharing memory both ways), autograd (``Q.backward(gradient=external_grad)``, ``requires_grad``
of sums, ``binary_cross_entropy_with_logits``, ``torch.no_grad()``/``detach()``, gradients accumulating
over ``backward(torch.ones_like(out), retain_graph=True)`` and ``grad.zero_()``), the LeNet of Neural
Networks (``print(net)``, ``params[0].size()``, ``out.backward(torch.randn(1, 10))``, the loss's
``grad_fn.next_functions``, the manual ``f.data.sub_(f.grad.data * learning_rate)``, then
``optim.SGD``) and the CIFAR-10 classifier (batch size 4, running loss, ``torch.save``/``load`` of the
``state_dict``, ``torch.max(outputs.data, 1)``, per-class accuracy by ``zip(labels, predictions)``).
Synthetic 32x32 colour images made with NumPy stand in for CIFAR-10 (600 for training);
tensors whose signs change with the seed are printed as lists, grad_fns by type name (a tensor's repr
pads its columns for a minus sign; a grad_fn's repr holds its address).
"""
# ruff: noqa: UP008  (the tutorial's own spelling: super(Net, self))

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
os.chdir(tempfile.mkdtemp())

# -- Tensors
data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)

np_array = np.array(data)
x_np = torch.from_numpy(np_array)

x_ones = torch.ones_like(x_data)  # x_data's properties
print(f"Ones Tensor: \n {x_ones} \n")

x_rand = torch.rand_like(x_data, dtype=torch.float)  # x_data's dtype overridden
print(f"Random Tensor: \n {x_rand} \n")

shape = (2, 3,)
rand_tensor = torch.rand(shape)
ones_tensor = torch.ones(shape)
zeros_tensor = torch.zeros(shape)

print(f"Random Tensor: \n {rand_tensor} \n")
print(f"Ones Tensor: \n {ones_tensor} \n")
print(f"Zeros Tensor: \n {zeros_tensor}")

tensor = torch.rand(3, 4)

print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")

tensor = torch.ones(4, 4)
print(f"First row: {tensor[0]}")
print(f"First column: {tensor[:, 0]}")
print(f"Last column: {tensor[..., -1]}")
tensor[:, 1] = 0
print(tensor)

t1 = torch.cat([tensor, tensor, tensor], dim=1)
print(t1)

# the matrix product, three ways
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)

y3 = torch.rand_like(y1)
torch.matmul(tensor, tensor.T, out=y3)
print(torch.equal(y1, y2), torch.equal(y1, y3))

# the element-wise product, three ways
z1 = tensor * tensor
z2 = tensor.mul(tensor)

z3 = torch.rand_like(tensor)
torch.mul(tensor, tensor, out=z3)
print(torch.equal(z1, z2), torch.equal(z1, z3))

agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))

print(f"{tensor} \n")
tensor.add_(5)
print(tensor)

# the NumPy bridge: a CPU tensor and its array share memory
t = torch.ones(5)
print(f"t: {t}")
n = t.numpy()
print(f"n: {n}")

t.add_(1)
print(f"t: {t}")
print(f"n: {n}")

n = np.ones(5)
t = torch.from_numpy(n)

np.add(n, 1, out=n)
print(f"t: {t}")
print(f"n: {n}")

# -- A Gentle Introduction to torch.autograd
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)

Q = 3*a**3 - b**2

external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)

# the collected gradients are the analytic ones
print(9*a**2 == a.grad)
print(-2*b == b.grad)

x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)

a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

# -- Automatic Differentiation with torch.autograd
x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
w = torch.randn(5, 3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
z = torch.matmul(x, w)+b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)

print(f"Gradient function for z = {type(z.grad_fn).__name__}")
print(f"Gradient function for loss = {type(loss.grad_fn).__name__}")

loss.backward()
print(w.grad)
print(b.grad)

z = torch.matmul(x, w)+b
print(z.requires_grad)

with torch.no_grad():
    z = torch.matmul(x, w)+b
print(z.requires_grad)

z = torch.matmul(x, w)+b
z_det = z.detach()
print(z_det.requires_grad)

inp = torch.eye(4, 5, requires_grad=True)
out = (inp+1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")


# -- Neural Networks: LeNet
class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        # convolution C1: 1 input channel, 6 output channels, 5x5 kernel, then ReLU: (N, 6, 28, 28)
        c1 = F.relu(self.conv1(input))
        # subsampling S2: a 2x2 max-pool, no parameters: (N, 6, 14, 14)
        s2 = F.max_pool2d(c1, (2, 2))
        # convolution C3: 6 input channels, 16 output channels, 5x5 kernel, then ReLU: (N, 16, 10, 10)
        c3 = F.relu(self.conv2(s2))
        # subsampling S4: a 2x2 max-pool: (N, 16, 5, 5)
        s4 = F.max_pool2d(c3, 2)
        # flatten: (N, 400)
        s4 = torch.flatten(s4, 1)
        # fully connected F5, F6 with ReLU, then the output layer: (N, 120), (N, 84), (N, 10)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


net = Net()
print(net)

params = list(net.parameters())
print(len(params))
print(params[0].size())  # conv1's .weight

input = torch.randn(1, 1, 32, 32)
out = net(input)
print(out.shape, type(out.grad_fn).__name__)

net.zero_grad()
out.backward(torch.randn(1, 10))

output = net(input)
target = torch.randn(10)  # a dummy target, for example
target = target.view(1, -1)  # the same shape as output
criterion = nn.MSELoss()

loss = criterion(output, target)
print(loss)

print(type(loss.grad_fn).__name__)  # MSELoss
print(type(loss.grad_fn.next_functions[0][0]).__name__)  # Linear
print(type(loss.grad_fn.next_functions[0][0].next_functions[0][0]).__name__)  # the bias

net.zero_grad()  # zeroes the gradient buffers of all parameters

print("conv1.bias.grad before backward")
print(net.conv1.bias.grad)

loss.backward()

print("conv1.bias.grad after backward")
print(net.conv1.bias.grad.shape)

learning_rate = 0.01
for f in net.parameters():
    f.data.sub_(f.grad.data * learning_rate)

# the same step by torch.optim
optimizer = optim.SGD(net.parameters(), lr=0.01)

# in the training loop:
optimizer.zero_grad()   # zero the gradient buffers
output = net(input)
loss = criterion(output, target)
loss.backward()
optimizer.step()    # does the update
lenet_loss = criterion(net(input), target).item()
print("loss went down", lenet_loss < loss.item())

# -- Training a Classifier: CIFAR-10 (synthetic stand-in)
classes = ("plane", "car", "bird", "cat",
           "deer", "dog", "frog", "horse", "ship", "truck")
rng = np.random.RandomState(5)
colours = rng.rand(10, 3, 1, 1).astype("float32")
stripes = (rng.rand(10, 1, 8, 8) > 0.5).astype("float32")


class SyntheticCIFAR(torch.utils.data.Dataset):
    """(image (3, 32, 32) normalised to [-1, 1], label): a colour times a striped texture per class."""

    def __init__(self, count, noise_seed):
        noise = np.random.RandomState(noise_seed)
        self.labels = noise.randint(0, 10, count)
        images = colours[self.labels] * np.kron(stripes[self.labels], np.ones((1, 1, 4, 4), "float32"))
        images = 0.6 * images + 0.4 * noise.rand(count, 3, 32, 32).astype("float32")
        self.images = (images - 0.5) / 0.5  # transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return torch.from_numpy(self.images[idx]), int(self.labels[idx])


batch_size = 4

trainset = SyntheticCIFAR(600, 30)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size,
                                          shuffle=True, num_workers=0)

testset = SyntheticCIFAR(200, 31)
testloader = torch.utils.data.DataLoader(testset, batch_size=batch_size,
                                         shuffle=False, num_workers=0)

dataiter = iter(trainloader)
images, labels = next(dataiter)
print(images.shape, labels.shape)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # every dimension but the batch's
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

for epoch in range(2):  # two passes over the dataset

    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        # data is a list: [inputs, labels]
        inputs, labels = data

        # zero the parameter gradients
        optimizer.zero_grad()

        # forward + backward + optimize
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()

        # statistics
        running_loss += loss.item()
        if i % 50 == 49:    # every 50 mini-batches (the tutorial: 2000)
            print(f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 50:.3f}")
            running_loss = 0.0

print("Finished Training")

PATH = "./cifar_net.pth"
torch.save(net.state_dict(), PATH)

dataiter = iter(testloader)
images, labels = next(dataiter)
print("GroundTruth: ", " ".join(f"{classes[labels[j]]:5s}" for j in range(4)))

net = Net()
net.load_state_dict(torch.load(PATH, weights_only=True))

outputs = net(images)
_, predicted = torch.max(outputs, 1)
print(predicted.shape, predicted.dtype)

correct = 0
total = 0
# no gradients for evaluation
with torch.no_grad():
    for data in testloader:
        images, labels = data
        # the network's scores for the images
        outputs = net(images)
        # the class with the highest score is the prediction
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f"Accuracy of the network on the {total} test images: {100 * correct // total} %")

# the right predictions per class
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}

# again no gradients
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = net(images)
        _, predictions = torch.max(outputs, 1)
        # the right predictions per class
        for label, prediction in zip(labels, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1


# the accuracy per class
for classname, correct_count in correct_pred.items():
    accuracy = 100 * float(correct_count) / total_pred[classname]
    print(f"Accuracy for class: {classname:5s} is {accuracy:.1f} %")

print(f"FINAL lenet_loss={lenet_loss:.4f} cifar_acc={correct / total:.4f}")
