"""Sequence-to-sequence with attention, after the PyTorch "translation with a seq2seq network"
tutorial: learn to reverse a sequence of digits.

A GRU encoder, a GRU decoder stepped one token at a time with Luong (dot) attention over the
encoder outputs (``bmm`` + ``softmax``), teacher forcing chosen at random per batch, greedy
decoding for evaluation.
"""

import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
random.seed(seed)

SOS = 0
num_digits = 8  # tokens 1..8
seq_len = 5
hidden_size = 32
rng = np.random.RandomState(0)


def make_pairs(n):
    source = torch.from_numpy(rng.randint(1, num_digits + 1, size=(n, seq_len))).long()
    return source, source.flip(1)


train_source, train_target = make_pairs(1024)
test_source, test_target = make_pairs(256)


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input):
        embedded = self.embedding(input)
        output, hidden = self.gru(embedded)
        return output, hidden


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.concat = nn.Linear(2 * hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward_step(self, input, hidden, encoder_outputs):
        embedded = self.embedding(input)
        output, hidden = self.gru(embedded, hidden)
        scores = torch.bmm(output, encoder_outputs.transpose(1, 2))
        attn_weights = F.softmax(scores, dim=-1)
        context = torch.bmm(attn_weights, encoder_outputs)
        concat_output = torch.tanh(self.concat(torch.cat((output, context), dim=2)))
        return self.out(concat_output), hidden, attn_weights

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        for i in range(seq_len):
            decoder_output, decoder_hidden, _ = self.forward_step(decoder_input, decoder_hidden, encoder_outputs)
            decoder_outputs.append(decoder_output)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)  # teacher forcing
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()
        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        return F.log_softmax(decoder_outputs, dim=-1), decoder_hidden


encoder = EncoderRNN(num_digits + 1, hidden_size)
decoder = AttnDecoderRNN(hidden_size, num_digits + 1)
encoder_optimizer = torch.optim.Adam(encoder.parameters(), lr=0.01)
decoder_optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
criterion = nn.NLLLoss()
batch_size = 64
teacher_forcing_ratio = 0.5

for epoch in range(1, 6):
    permutation = torch.randperm(len(train_source))
    total_loss = 0.0
    for start in range(0, len(train_source), batch_size):
        index = permutation[start:start + batch_size]
        source, target = train_source[index], train_target[index]
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        encoder_outputs, encoder_hidden = encoder(source)
        use_teacher_forcing = random.random() < teacher_forcing_ratio
        decoder_outputs, _ = decoder(encoder_outputs, encoder_hidden, target if use_teacher_forcing else None)
        loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)), target.view(-1))
        loss.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()
        total_loss += loss.item()
    print(f"epoch {epoch} loss {total_loss / (len(train_source) // batch_size):.4f}")

encoder.eval()
decoder.eval()
with torch.no_grad():
    encoder_outputs, encoder_hidden = encoder(test_source)
    decoder_outputs, _ = decoder(encoder_outputs, encoder_hidden)
    test_loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)), test_target.view(-1)).item()
    predicted = decoder_outputs.argmax(-1)
    token_accuracy = (predicted == test_target).float().mean().item()
    sequence_accuracy = (predicted == test_target).all(dim=1).float().mean().item()
print(f"> {test_source[0].tolist()}\n= {test_target[0].tolist()}")
print(f"FINAL loss={test_loss:.4f} token_acc={token_accuracy:.4f} seq_acc={sequence_accuracy:.4f}")
