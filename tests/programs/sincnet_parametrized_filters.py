"""SincNet (Ravanelli & Bengio, SLT 2018) in the mravanelli/SincNet layout, classifying synthetic tones.

Each "sentence" is a 0.25 s waveform at 8 kHz holding one class's tone (four frequency ranges, random
phase, a weaker second harmonic, noise); as in ``speaker_id.py``'s ``create_batches_rnd`` a batch takes a
random ``wlen`` chunk of each sentence (``np.random.randint(snt_len - wlen - 1)``) with a random amplitude
``np.random.uniform(1.0 - fact_amp, 1 + fact_amp)``. The network is ``dnn_models.py``'s ``SincNet`` at toy
width: ``LayerNorm`` (the repo's own, ``gamma * (x - mean) / (std + eps) + beta``) over the raw
waveform, then ``SincConv_fast`` — learnable ``low_hz_``/``band_hz_`` in Hz initialised equally spaced on
the mel scale, ``low = min_low_hz + torch.abs(low_hz_)``, ``high = torch.clamp(low + min_band_hz +
torch.abs(band_hz_), min_low_hz, sample_rate / 2)``, the left half of each band-pass from
``(torch.sin(f_times_t_high) - torch.sin(f_times_t_low)) / (n_ / 2)`` times the half Hamming window
``0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / kernel_size)``, mirrored by ``torch.flip(..., dims=[1])``
around the ``2 * band`` centre and normalised by ``2 * band`` — applied with ``F.conv1d``; then
``F.max_pool1d(torch.abs(...))``, ``LayerNorm``, ``leaky_relu``, a second ``nn.Conv1d`` block, ``x.view(batch,
-1)`` into an MLP and ``LogSoftmax`` + ``NLLLoss``, trained with the repo's ``optim.RMSprop(lr=lr,
alpha=0.95, eps=1e-8)``. Evaluation averages the posteriors of overlapping chunks per sentence (the
repo's sentence-level error).

Checked: each built filter equals the original ``sinc_conv``'s ``2 * f2 * sinc(f2) - 2 * f1 * sinc(f1)``
band-pass under the same window (max abs difference); the magnitude of ``torch.fft.rfft`` of each learned
filter peaks inside its learned band (within the window's main-lobe half width); the learned cutoffs stay
ordered (``low < high``, band at least ``min_band_hz``); held-out sentence accuracy rises.
"""

# ruff: noqa: UP008, UP031, UP034  (the reference's own spelling: super(Class, self), % formatting, self.ln0((x)))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

fs = 8000
wlen = 400  # samples per chunk (50 ms)
wshift = 100
snt_len = 2000
CLASS_HZ = [(250, 400), (600, 900), (1300, 1800), (2600, 3400)]


# ----------------------------------------------------------------------------------- data
def make_sentences(n):
    t = np.arange(snt_len) / fs
    signals, labels = [], []
    for _ in range(n):
        lab = np.random.randint(len(CLASS_HZ))
        f0 = np.random.uniform(*CLASS_HZ[lab])
        phase = np.random.uniform(0, 2 * np.pi, size=2)
        x = np.sin(2 * np.pi * f0 * t + phase[0]) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t + phase[1])
        x += 0.5 * np.random.randn(snt_len)
        signals.append(x.astype(np.float32))
        labels.append(lab)
    return np.stack(signals), np.array(labels)


def create_batches_rnd(batch_size, data, labels, wlen, fact_amp):
    # Initialization of the minibatch (batch_size,[0=>x_t,1=>x_t+N,1=>random_samp])
    sig_batch = np.zeros([batch_size, wlen])
    lab_batch = np.zeros(batch_size)
    snt_id_arr = np.random.randint(len(data), size=batch_size)
    rand_amp_arr = np.random.uniform(1.0 - fact_amp, 1 + fact_amp, batch_size)
    for i in range(batch_size):
        # accesing to a random chunk
        snt_beg = np.random.randint(snt_len - wlen - 1)  # randint(0, snt_len-2*wlen-1)
        snt_end = snt_beg + wlen
        sig_batch[i, :] = data[snt_id_arr[i]][snt_beg:snt_end] * rand_amp_arr[i]
        lab_batch[i] = labels[snt_id_arr[i]]
    inp = torch.from_numpy(sig_batch).float().contiguous()
    lab = torch.from_numpy(lab_batch).float().contiguous()
    return inp, lab


# ----------------------------------------------------------------------------------- dnn_models.py
def flip(x, dim):
    xsize = x.size()
    dim = x.dim() + dim if dim < 0 else dim
    x = x.contiguous()
    x = x.view(-1, *xsize[dim:])
    x = x.view(x.size(0), x.size(1), -1)[:, getattr(torch.arange(x.size(1) - 1, -1, -1), ('cpu', 'cuda')[x.is_cuda])().long(), :]
    return x.view(xsize)


def sinc(band, t_right):
    y_right = torch.sin(2 * math.pi * band * t_right) / (2 * math.pi * band * t_right)
    y_left = flip(y_right, 0)
    y = torch.cat([y_left, torch.ones(1), y_right])
    return y


class SincConv_fast(nn.Module):
    """Sinc-based convolution
    Parameters
    ----------
    in_channels : `int`
        Number of input channels. Must be 1.
    out_channels : `int`
        Number of filters.
    kernel_size : `int`
        Filter length.
    sample_rate : `int`, optional
        Sample rate. Defaults to 16000.
    """

    @staticmethod
    def to_mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    @staticmethod
    def to_hz(mel):
        return 700 * (10 ** (mel / 2595) - 1)

    def __init__(self, out_channels, kernel_size, sample_rate=16000, in_channels=1,
                 stride=1, padding=0, dilation=1, bias=False, groups=1, min_low_hz=50, min_band_hz=50):

        super(SincConv_fast, self).__init__()

        if in_channels != 1:
            msg = "SincConv only support one input channel (here, in_channels = {%i})" % (in_channels)
            raise ValueError(msg)

        self.out_channels = out_channels
        self.kernel_size = kernel_size

        # Forcing the filters to be odd (i.e, perfectly symmetrics)
        if kernel_size % 2 == 0:
            self.kernel_size = self.kernel_size + 1

        self.stride = stride
        self.padding = padding
        self.dilation = dilation

        if bias:
            raise ValueError('SincConv does not support bias.')
        if groups > 1:
            raise ValueError('SincConv does not support groups.')

        self.sample_rate = sample_rate
        self.min_low_hz = min_low_hz
        self.min_band_hz = min_band_hz

        # initialize filterbanks such that they are equally spaced in Mel scale
        low_hz = 30
        high_hz = self.sample_rate / 2 - (self.min_low_hz + self.min_band_hz)

        mel = np.linspace(self.to_mel(low_hz),
                          self.to_mel(high_hz),
                          self.out_channels + 1)
        hz = self.to_hz(mel)

        # filter lower frequency (out_channels, 1)
        self.low_hz_ = nn.Parameter(torch.Tensor(hz[:-1]).view(-1, 1))

        # filter frequency band (out_channels, 1)
        self.band_hz_ = nn.Parameter(torch.Tensor(np.diff(hz)).view(-1, 1))

        # Hamming window
        # self.window_ = torch.hamming_window(self.kernel_size)
        n_lin = torch.linspace(0, (self.kernel_size / 2) - 1, steps=int((self.kernel_size / 2)))  # computing only half of the window
        self.window_ = 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / self.kernel_size)

        # (1, kernel_size/2)
        n = (self.kernel_size - 1) / 2.0
        self.n_ = 2 * math.pi * torch.arange(-n, 0).view(1, -1) / self.sample_rate  # Due to symmetry, I only need half of the time axes

    def forward(self, waveforms):
        """
        Parameters
        ----------
        waveforms : `torch.Tensor` (batch_size, 1, n_samples)
            Batch of waveforms.
        Returns
        -------
        features : `torch.Tensor` (batch_size, out_channels, n_samples_out)
            Batch of sinc filters activations.
        """

        self.n_ = self.n_.to(waveforms.device)

        self.window_ = self.window_.to(waveforms.device)

        low = self.min_low_hz + torch.abs(self.low_hz_)

        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_), self.min_low_hz, self.sample_rate / 2)
        band = (high - low)[:, 0]

        f_times_t_low = torch.matmul(low, self.n_)
        f_times_t_high = torch.matmul(high, self.n_)

        band_pass_left = ((torch.sin(f_times_t_high) - torch.sin(f_times_t_low)) / (self.n_ / 2)) * self.window_  # Equivalent of Eq.4 of the reference paper (SPEAKER RECOGNITION FROM RAW WAVEFORM WITH SINCNET). I just have expanded the sinc and simplified the terms. This way I avoid several useless computations.
        band_pass_center = 2 * band.view(-1, 1)
        band_pass_right = torch.flip(band_pass_left, dims=[1])

        band_pass = torch.cat([band_pass_left, band_pass_center, band_pass_right], dim=1)

        band_pass = band_pass / (2 * band[:, None])

        self.filters = (band_pass).view(
            self.out_channels, 1, self.kernel_size)

        return F.conv1d(waveforms, self.filters, stride=self.stride,
                        padding=self.padding, dilation=self.dilation,
                        bias=None, groups=1)


def act_fun(act_type):
    if act_type == "relu":
        return nn.ReLU()
    if act_type == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if act_type == "linear":
        return nn.LeakyReLU(1)  # initializzed like this, but not used in forward!
    if act_type == "softmax":
        return nn.LogSoftmax(dim=1)


class LayerNorm(nn.Module):

    def __init__(self, features, eps=1e-6):
        super(LayerNorm, self).__init__()
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


class SincNet(nn.Module):

    def __init__(self, options):
        super(SincNet, self).__init__()

        self.cnn_N_filt = options['cnn_N_filt']
        self.cnn_len_filt = options['cnn_len_filt']
        self.cnn_max_pool_len = options['cnn_max_pool_len']
        self.cnn_act = options['cnn_act']
        self.cnn_drop = options['cnn_drop']
        self.cnn_use_laynorm = options['cnn_use_laynorm']
        self.cnn_use_laynorm_inp = options['cnn_use_laynorm_inp']
        self.input_dim = int(options['input_dim'])
        self.fs = options['fs']
        self.N_cnn_lay = len(options['cnn_N_filt'])

        self.conv = nn.ModuleList([])
        self.ln = nn.ModuleList([])
        self.act = nn.ModuleList([])
        self.drop = nn.ModuleList([])

        if self.cnn_use_laynorm_inp:
            self.ln0 = LayerNorm(self.input_dim)

        current_input = self.input_dim

        for i in range(self.N_cnn_lay):
            N_filt = int(self.cnn_N_filt[i])

            # dropout
            self.drop.append(nn.Dropout(p=self.cnn_drop[i]))

            # activation
            self.act.append(act_fun(self.cnn_act[i]))

            # layer norm initialization
            self.ln.append(LayerNorm([N_filt, int((current_input - self.cnn_len_filt[i] + 1) / self.cnn_max_pool_len[i])]))

            if i == 0:
                self.conv.append(SincConv_fast(self.cnn_N_filt[0], self.cnn_len_filt[0], self.fs))
            else:
                self.conv.append(nn.Conv1d(self.cnn_N_filt[i - 1], self.cnn_N_filt[i], self.cnn_len_filt[i]))

            current_input = int((current_input - self.cnn_len_filt[i] + 1) / self.cnn_max_pool_len[i])

        self.out_dim = current_input * N_filt

    def forward(self, x):
        batch = x.shape[0]
        seq_len = x.shape[1]

        if bool(self.cnn_use_laynorm_inp):
            x = self.ln0((x))

        x = x.view(batch, 1, seq_len)

        for i in range(self.N_cnn_lay):
            if self.cnn_use_laynorm[i]:
                if i == 0:
                    x = self.drop[i](self.act[i](self.ln[i](F.max_pool1d(torch.abs(self.conv[i](x)), self.cnn_max_pool_len[i]))))
                else:
                    x = self.drop[i](self.act[i](self.ln[i](F.max_pool1d(self.conv[i](x), self.cnn_max_pool_len[i]))))

            if self.cnn_use_laynorm[i] is False:
                x = self.drop[i](self.act[i](F.max_pool1d(self.conv[i](x), self.cnn_max_pool_len[i])))

        x = x.view(batch, -1)

        return x


class MLP(nn.Module):
    def __init__(self, options):
        super(MLP, self).__init__()

        self.input_dim = int(options['input_dim'])
        self.fc_lay = options['fc_lay']
        self.fc_drop = options['fc_drop']
        self.fc_use_batchnorm = options['fc_use_batchnorm']
        self.fc_use_laynorm = options['fc_use_laynorm']
        self.fc_use_laynorm_inp = options['fc_use_laynorm_inp']
        self.fc_act = options['fc_act']

        self.wx = nn.ModuleList([])
        self.bn = nn.ModuleList([])
        self.ln = nn.ModuleList([])
        self.act = nn.ModuleList([])
        self.drop = nn.ModuleList([])

        # input layer normalization
        if self.fc_use_laynorm_inp:
            self.ln0 = LayerNorm(self.input_dim)

        self.N_fc_lay = len(self.fc_lay)

        current_input = self.input_dim

        # Initialization of hidden layers
        for i in range(self.N_fc_lay):
            # dropout
            self.drop.append(nn.Dropout(p=self.fc_drop[i]))

            # activation
            self.act.append(act_fun(self.fc_act[i]))

            add_bias = True

            # layer norm initialization
            self.ln.append(LayerNorm(self.fc_lay[i]))
            self.bn.append(nn.BatchNorm1d(self.fc_lay[i], momentum=0.05))

            if self.fc_use_laynorm[i] or self.fc_use_batchnorm[i]:
                add_bias = False

            # Linear operations
            self.wx.append(nn.Linear(current_input, self.fc_lay[i], bias=add_bias))

            # weight initialization
            self.wx[i].weight = torch.nn.Parameter(torch.Tensor(self.fc_lay[i], current_input).uniform_(-np.sqrt(0.01 / (current_input + self.fc_lay[i])), np.sqrt(0.01 / (current_input + self.fc_lay[i]))))
            if add_bias:
                self.wx[i].bias = torch.nn.Parameter(torch.zeros(self.fc_lay[i]))

            current_input = self.fc_lay[i]

    def forward(self, x):
        # Applying Layer/Batch Norm
        if bool(self.fc_use_laynorm_inp):
            x = self.ln0((x))

        for i in range(self.N_fc_lay):
            if self.fc_act[i] != 'linear':
                if self.fc_use_laynorm[i]:
                    x = self.drop[i](self.act[i](self.ln[i](self.wx[i](x))))
                if self.fc_use_batchnorm[i]:
                    x = self.drop[i](self.act[i](self.bn[i](self.wx[i](x))))
                if self.fc_use_batchnorm[i] is False and self.fc_use_laynorm[i] is False:
                    x = self.drop[i](self.act[i](self.wx[i](x)))
            else:
                if self.fc_use_laynorm[i]:
                    x = self.drop[i](self.ln[i](self.wx[i](x)))
                if self.fc_use_batchnorm[i]:
                    x = self.drop[i](self.bn[i](self.wx[i](x)))
                if self.fc_use_batchnorm[i] is False and self.fc_use_laynorm[i] is False:
                    x = self.drop[i](self.wx[i](x))

        return x


# ----------------------------------------------------------------------------------- speaker_id.py
CNN_arch = {'input_dim': wlen, 'fs': fs,
            'cnn_N_filt': [12, 12], 'cnn_len_filt': [65, 5], 'cnn_max_pool_len': [3, 3],
            'cnn_use_laynorm': [False, True], 'cnn_use_laynorm_inp': True, 'cnn_act': ['leaky_relu', 'leaky_relu'], 'cnn_drop': [0.0, 0.0]}
CNN_net = SincNet(CNN_arch)
DNN1_arch = {'input_dim': CNN_net.out_dim, 'fc_lay': [64, 64], 'fc_drop': [0.0, 0.0],
             'fc_use_laynorm_inp': True, 'fc_use_batchnorm': [True, True], 'fc_use_laynorm': [False, False],
             'fc_act': ['leaky_relu', 'leaky_relu']}
DNN1_net = MLP(DNN1_arch)
DNN2_arch = {'input_dim': 64, 'fc_lay': [len(CLASS_HZ)], 'fc_drop': [0.0], 'fc_use_laynorm_inp': False,
             'fc_use_batchnorm': [False], 'fc_use_laynorm': [False], 'fc_act': ['softmax']}
DNN2_net = MLP(DNN2_arch)

sinc_layer = CNN_net.conv[0]
print(f"SincNet out_dim {CNN_net.out_dim}, kernel {sinc_layer.kernel_size}, filters {sinc_layer.out_channels}")

cost = nn.NLLLoss()
lr = 0.002
optimizer_CNN = optim.RMSprop(CNN_net.parameters(), lr=lr, alpha=0.95, eps=1e-8)
optimizer_DNN1 = optim.RMSprop(DNN1_net.parameters(), lr=lr, alpha=0.95, eps=1e-8)
optimizer_DNN2 = optim.RMSprop(DNN2_net.parameters(), lr=lr, alpha=0.95, eps=1e-8)

data_tr, lab_tr = make_sentences(96)
data_te, lab_te = make_sentences(32)


def sentence_accuracy():
    CNN_net.eval()
    DNN1_net.eval()
    DNN2_net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(len(data_te)):
            signal = torch.from_numpy(data_te[i]).float()
            beg_samp, end_samp = 0, wlen
            N_fr = int((snt_len - wlen) / (wshift))
            sig_arr = torch.zeros([N_fr, wlen]).float().contiguous()
            for count_fr in range(N_fr):
                sig_arr[count_fr, :] = signal[beg_samp:end_samp]
                beg_samp = beg_samp + wshift
                end_samp = beg_samp + wlen
            pout = DNN2_net(DNN1_net(CNN_net(sig_arr)))
            best_class = torch.argmax(torch.sum(pout, dim=0))
            correct += int(best_class.item() == lab_te[i])
    CNN_net.train()
    DNN1_net.train()
    DNN2_net.train()
    return correct / len(data_te)


acc_before = sentence_accuracy()
N_epochs, N_batches, batch_size = 12, 8, 32
for epoch in range(N_epochs):
    loss_sum = 0
    err_sum = 0
    for _i in range(N_batches):
        [inp, lab] = create_batches_rnd(batch_size, data_tr, lab_tr, wlen, 0.2)
        pout = DNN2_net(DNN1_net(CNN_net(inp)))

        pred = torch.max(pout, dim=1)[1]
        loss = cost(pout, lab.long())
        err = torch.mean((pred != lab.long()).float())

        optimizer_CNN.zero_grad()
        optimizer_DNN1.zero_grad()
        optimizer_DNN2.zero_grad()

        loss.backward()
        optimizer_CNN.step()
        optimizer_DNN1.step()
        optimizer_DNN2.step()

        loss_sum = loss_sum + loss.detach()
        err_sum = err_sum + err.detach()
    loss_tot = loss_sum / N_batches
    err_tot = err_sum / N_batches
    if epoch % 2 == 1:
        print("epoch %i, loss_tr=%f err_tr=%f" % (epoch, loss_tot, err_tot))
acc_after = sentence_accuracy()

# ----------------------------------------------------------------------------------- filter checks
with torch.no_grad():
    CNN_net(torch.from_numpy(data_te[:1, :wlen]))
    filters = sinc_layer.filters[:, 0, :]
    low = sinc_layer.min_low_hz + torch.abs(sinc_layer.low_hz_)
    high = torch.clamp(low + sinc_layer.min_band_hz + torch.abs(sinc_layer.band_hz_), sinc_layer.min_low_hz, fs / 2)
    low, high = low[:, 0], high[:, 0]

    # the original sinc_conv's band-pass, 2*f2*sinc(f2) - 2*f1*sinc(f1) (frequencies in cycles/sample), same window
    N = sinc_layer.kernel_size
    t_right = torch.linspace(1, (N - 1) / 2, steps=int((N - 1) / 2)) / fs
    window = torch.cat([sinc_layer.window_, torch.ones(1), torch.flip(sinc_layer.window_, dims=[0])])
    slow = []
    for i in range(sinc_layer.out_channels):
        low_pass1 = 2 * low[i] * sinc(low[i], t_right)
        low_pass2 = 2 * high[i] * sinc(high[i], t_right)
        band_pass = (low_pass2 - low_pass1) / (2 * (high[i] - low[i]))
        slow.append(band_pass * window)
    slow = torch.stack(slow)
    route_err = (slow - filters).abs().max().item()

    n_fft = 1024
    spectrum = torch.fft.rfft(filters, n=n_fft).abs()
    freqs = torch.fft.rfftfreq(n_fft, d=1.0 / fs)
    peak_hz = freqs[spectrum.argmax(dim=1)]
    lobe = 2 * fs / N  # Hamming main-lobe half width
    in_band = ((peak_hz >= low - lobe) & (peak_hz <= high + lobe)).sum().item()
    ordered = bool((low < high).all()) and bool(((high - low) >= sinc_layer.min_band_hz - 1e-3).all())
    moved = (torch.abs(sinc_layer.low_hz_[:, 0]) - torch.tensor(SincConv_fast.to_hz(np.linspace(SincConv_fast.to_mel(30), SincConv_fast.to_mel(fs / 2 - 100), 13))[:-1], dtype=torch.float32)).abs().max().item()

print(f"bands (Hz): low {[round(v) for v in low.tolist()][:4]}..., high {[round(v) for v in high.tolist()][:4]}...; cutoffs moved up to {moved:.1f} Hz")
print(f"fast filters vs sinc_conv: {route_err:.2e}; rfft peaks inside band: {in_band}/{sinc_layer.out_channels}; ordered: {ordered}")
print(f"sentence accuracy {acc_before:.4f} -> {acc_after:.4f}")
print(f"FINAL acc_before={acc_before:.4f} acc_after={acc_after:.4f} loss_last={float(loss_tot):.4f} peaks_in_band={in_band} "
      f"ordered={int(ordered)} route_ok={int(route_err < 1e-4)} moved_hz={moved:.2f}")
