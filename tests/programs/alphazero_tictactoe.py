"""AlphaZero on tic-tac-toe, laid out as suragnair/alpha-zero-general lays it out: a ``Game`` class
(``getInitBoard``, ``getNextState``, ``getValidMoves``, ``getGameEnded``, ``getCanonicalForm``,
``getSymmetries`` by ``np.rot90``/``np.fliplr``, ``stringRepresentation`` by ``tobytes()``), the
``TicTacToeNNet`` (``s.view(-1, 1, board_x, board_y)``, Conv2d + BatchNorm2d stacks, ``F.dropout(...,
training=self.training)``, a ``F.log_softmax`` policy head and a ``torch.tanh`` value head), the
``NNetWrapper`` (``optim.Adam``, minibatches by ``np.random.randint``, ``torch.FloatTensor(np.array(
boards).astype(np.float64))``, ``.contiguous()``, ``loss_pi = -torch.sum(targets * outputs) /
targets.size()[0]``, ``loss_v = torch.sum((targets - outputs.view(-1)) ** 2) / targets.size()[0]``,
an ``AverageMeter``, ``predict`` under ``eval()`` + ``torch.no_grad()`` returning
``torch.exp(pi).data.cpu().numpy()[0]``, checkpoints by ``torch.save({'state_dict': ...})`` /
``torch.load``), the ``MCTS`` with its ``Qsa``/``Nsa``/``Ns``/``Ps``/``Es``/``Vs`` dicts, the PUCT
formula ``Q + cpuct * P * sqrt(Ns) / (1 + Nsa)`` and visit-count policies with a temperature, the
``Coach`` (self-play episodes with ``tempThreshold``, symmetric training examples, the new net pitted
against the previous one in an ``Arena`` with ``updateThreshold``), and a final Arena against a random
player whose win rate is printed.

Tiny sizes: 12 MCTS simulations, 6 self-play episodes per iteration, 3 iterations.
"""
# ruff: noqa: N802, N803, N806, UP004, UP008, UP031, UP032, B007, B023  (the repository's spelling: camelCase names, super(Cls, self), % formats, lambdas over the loop's MCTS)

import math
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

EPS = 1e-8


class dotdict(dict):
    def __getattr__(self, name):
        return self[name]


args = dotdict({
    'numIters': 3,
    'numEps': 6,
    'tempThreshold': 4,
    'updateThreshold': 0.55,
    'numMCTSSims': 12,
    'arenaCompare': 4,
    'cpuct': 1,
    'checkpoint': tempfile.mkdtemp(),
})

nnet_args = dotdict({
    'lr': 0.003,
    'dropout': 0.3,
    'epochs': 4,
    'batch_size': 16,
    'cuda': torch.cuda.is_available(),
    'num_channels': 16,
})


class TicTacToeGame:
    """Board: 3x3 numpy array, 1 for player 1, -1 for player 2; action n*n is 'pass'."""

    def __init__(self, n=3):
        self.n = n

    def getInitBoard(self):
        return np.zeros((self.n, self.n), dtype=np.int64)

    def getBoardSize(self):
        return (self.n, self.n)

    def getActionSize(self):
        return self.n * self.n + 1

    def getNextState(self, board, player, action):
        if action == self.n * self.n:
            return (board, -player)
        b = np.copy(board)
        b[action // self.n, action % self.n] = player
        return (b, -player)

    def getValidMoves(self, board, player):
        valids = [0] * self.getActionSize()
        empty = list(zip(*np.where(board == 0)))
        if len(empty) == 0:
            valids[-1] = 1
            return np.array(valids)
        for x, y in empty:
            valids[self.n * x + y] = 1
        return np.array(valids)

    def is_win(self, board, player):
        n = self.n
        lines = [board[i, :] for i in range(n)] + [board[:, j] for j in range(n)]
        lines += [np.diag(board), np.diag(np.fliplr(board))]
        return any(np.all(line == player) for line in lines)

    def getGameEnded(self, board, player):
        # 0 if not ended, 1 if player won, -1 if player lost, a small nonzero value for a draw
        if self.is_win(board, player):
            return 1
        if self.is_win(board, -player):
            return -1
        if (board != 0).all():
            return 1e-4
        return 0

    def getCanonicalForm(self, board, player):
        return player * board

    def getSymmetries(self, board, pi):
        assert len(pi) == self.n ** 2 + 1
        pi_board = np.reshape(pi[:-1], (self.n, self.n))
        symmetries = []
        for i in range(1, 5):
            for j in [True, False]:
                newB = np.rot90(board, i)
                newPi = np.rot90(pi_board, i)
                if j:
                    newB = np.fliplr(newB)
                    newPi = np.fliplr(newPi)
                symmetries += [(newB, list(newPi.ravel()) + [pi[-1]])]
        return symmetries

    def stringRepresentation(self, board):
        return board.tobytes()


class TicTacToeNNet(nn.Module):
    def __init__(self, game, args):
        self.board_x, self.board_y = game.getBoardSize()
        self.action_size = game.getActionSize()
        self.args = args
        super(TicTacToeNNet, self).__init__()
        self.conv1 = nn.Conv2d(1, args.num_channels, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(args.num_channels, args.num_channels, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(args.num_channels)
        self.bn2 = nn.BatchNorm2d(args.num_channels)
        self.fc1 = nn.Linear(args.num_channels * self.board_x * self.board_y, 64)
        self.fc_bn1 = nn.BatchNorm1d(64)
        self.fc2 = nn.Linear(64, 32)
        self.fc_bn2 = nn.BatchNorm1d(32)
        self.fc3 = nn.Linear(32, self.action_size)
        self.fc4 = nn.Linear(32, 1)

    def forward(self, s):
        s = s.view(-1, 1, self.board_x, self.board_y)
        s = F.relu(self.bn1(self.conv1(s)))
        s = F.relu(self.bn2(self.conv2(s)))
        s = s.view(-1, self.args.num_channels * self.board_x * self.board_y)
        s = F.dropout(F.relu(self.fc_bn1(self.fc1(s))), p=self.args.dropout, training=self.training)
        s = F.dropout(F.relu(self.fc_bn2(self.fc2(s))), p=self.args.dropout, training=self.training)
        pi = self.fc3(s)
        v = self.fc4(s)
        return F.log_softmax(pi, dim=1), torch.tanh(v)


class AverageMeter(object):
    def __init__(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def __repr__(self):
        return f'{self.avg:.2e}'

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


class NNetWrapper:
    def __init__(self, game):
        self.nnet = TicTacToeNNet(game, nnet_args)
        self.board_x, self.board_y = game.getBoardSize()
        self.action_size = game.getActionSize()
        if nnet_args.cuda:
            self.nnet.cuda()

    def train(self, examples):
        """examples: list of (board, pi, v)."""
        optimizer = optim.Adam(self.nnet.parameters(), lr=nnet_args.lr)
        for epoch in range(nnet_args.epochs):
            self.nnet.train()
            pi_losses = AverageMeter()
            v_losses = AverageMeter()
            batch_count = int(len(examples) / nnet_args.batch_size)
            for _ in range(batch_count):
                sample_ids = np.random.randint(len(examples), size=nnet_args.batch_size)
                boards, pis, vs = list(zip(*[examples[i] for i in sample_ids]))
                boards = torch.FloatTensor(np.array(boards).astype(np.float64))
                target_pis = torch.FloatTensor(np.array(pis))
                target_vs = torch.FloatTensor(np.array(vs).astype(np.float64))
                if nnet_args.cuda:
                    boards, target_pis, target_vs = boards.contiguous().cuda(), target_pis.contiguous().cuda(), target_vs.contiguous().cuda()
                else:
                    boards, target_pis, target_vs = boards.contiguous(), target_pis.contiguous(), target_vs.contiguous()

                out_pi, out_v = self.nnet(boards)
                l_pi = self.loss_pi(target_pis, out_pi)
                l_v = self.loss_v(target_vs, out_v)
                total_loss = l_pi + l_v

                pi_losses.update(l_pi.item(), boards.size(0))
                v_losses.update(l_v.item(), boards.size(0))

                optimizer.zero_grad()
                total_loss.backward()
                optimizer.step()
        print(f'  training: epochs {nnet_args.epochs} Loss_pi={pi_losses.avg:.4f} Loss_v={v_losses.avg:.4f}')
        return pi_losses.avg, v_losses.avg

    def predict(self, board):
        board = torch.FloatTensor(board.astype(np.float64))
        if nnet_args.cuda:
            board = board.contiguous().cuda()
        board = board.view(1, self.board_x, self.board_y)
        self.nnet.eval()
        with torch.no_grad():
            pi, v = self.nnet(board)
        return torch.exp(pi).data.cpu().numpy()[0], v.data.cpu().numpy()[0]

    def loss_pi(self, targets, outputs):
        return -torch.sum(targets * outputs) / targets.size()[0]

    def loss_v(self, targets, outputs):
        return torch.sum((targets - outputs.view(-1)) ** 2) / targets.size()[0]

    def save_checkpoint(self, folder='checkpoint', filename='checkpoint.pth.tar'):
        filepath = os.path.join(folder, filename)
        if not os.path.exists(folder):
            os.mkdir(folder)
        torch.save({'state_dict': self.nnet.state_dict()}, filepath)

    def load_checkpoint(self, folder='checkpoint', filename='checkpoint.pth.tar'):
        filepath = os.path.join(folder, filename)
        if not os.path.exists(filepath):
            raise ValueError("No model in path {}".format(filepath))
        map_location = None if nnet_args.cuda else 'cpu'
        checkpoint = torch.load(filepath, map_location=map_location)
        self.nnet.load_state_dict(checkpoint['state_dict'])


class MCTS:
    def __init__(self, game, nnet, args):
        self.game = game
        self.nnet = nnet
        self.args = args
        self.Qsa = {}  # Q values for s,a
        self.Nsa = {}  # times edge s,a was visited
        self.Ns = {}  # times board s was visited
        self.Ps = {}  # initial policy (returned by neural net)
        self.Es = {}  # game.getGameEnded for board s
        self.Vs = {}  # game.getValidMoves for board s

    def getActionProb(self, canonicalBoard, temp=1):
        for _ in range(self.args.numMCTSSims):
            self.search(canonicalBoard)

        s = self.game.stringRepresentation(canonicalBoard)
        counts = [self.Nsa[(s, a)] if (s, a) in self.Nsa else 0 for a in range(self.game.getActionSize())]

        if temp == 0:
            bestAs = np.array(np.argwhere(counts == np.max(counts))).flatten()
            bestA = np.random.choice(bestAs)
            probs = [0] * len(counts)
            probs[bestA] = 1
            return probs

        counts = [x ** (1. / temp) for x in counts]
        counts_sum = float(sum(counts))
        probs = [x / counts_sum for x in counts]
        return probs

    def search(self, canonicalBoard):
        s = self.game.stringRepresentation(canonicalBoard)

        if s not in self.Es:
            self.Es[s] = self.game.getGameEnded(canonicalBoard, 1)
        if self.Es[s] != 0:
            # terminal node
            return -self.Es[s]

        if s not in self.Ps:
            # leaf node
            self.Ps[s], v = self.nnet.predict(canonicalBoard)
            valids = self.game.getValidMoves(canonicalBoard, 1)
            self.Ps[s] = self.Ps[s] * valids  # masking invalid moves
            sum_Ps_s = np.sum(self.Ps[s])
            if sum_Ps_s > 0:
                self.Ps[s] /= sum_Ps_s  # renormalize
            else:
                # all valid moves were masked: make all valid moves equally probable
                self.Ps[s] = self.Ps[s] + valids
                self.Ps[s] /= np.sum(self.Ps[s])
            self.Vs[s] = valids
            self.Ns[s] = 0
            return -v

        valids = self.Vs[s]
        cur_best = -float('inf')
        best_act = -1

        # pick the action with the highest upper confidence bound
        for a in range(self.game.getActionSize()):
            if valids[a]:
                if (s, a) in self.Qsa:
                    u = self.Qsa[(s, a)] + self.args.cpuct * self.Ps[s][a] * math.sqrt(self.Ns[s]) / (
                            1 + self.Nsa[(s, a)])
                else:
                    u = self.args.cpuct * self.Ps[s][a] * math.sqrt(self.Ns[s] + EPS)  # Q = 0 ?
                if u > cur_best:
                    cur_best = u
                    best_act = a

        a = best_act
        next_s, next_player = self.game.getNextState(canonicalBoard, 1, a)
        next_s = self.game.getCanonicalForm(next_s, next_player)

        v = self.search(next_s)

        if (s, a) in self.Qsa:
            self.Qsa[(s, a)] = (self.Nsa[(s, a)] * self.Qsa[(s, a)] + v) / (self.Nsa[(s, a)] + 1)
            self.Nsa[(s, a)] += 1
        else:
            self.Qsa[(s, a)] = v
            self.Nsa[(s, a)] = 1

        self.Ns[s] += 1
        return -v


class RandomPlayer:
    def __init__(self, game):
        self.game = game

    def play(self, board):
        a = np.random.randint(self.game.getActionSize())
        valids = self.game.getValidMoves(board, 1)
        while valids[a] != 1:
            a = np.random.randint(self.game.getActionSize())
        return a


class Arena:
    def __init__(self, player1, player2, game):
        self.player1 = player1
        self.player2 = player2
        self.game = game

    def playGame(self):
        players = [self.player2, None, self.player1]
        curPlayer = 1
        board = self.game.getInitBoard()
        while self.game.getGameEnded(board, curPlayer) == 0:
            action = players[curPlayer + 1](self.game.getCanonicalForm(board, curPlayer))
            valids = self.game.getValidMoves(self.game.getCanonicalForm(board, curPlayer), 1)
            assert valids[action] > 0
            board, curPlayer = self.game.getNextState(board, curPlayer, action)
        return curPlayer * self.game.getGameEnded(board, curPlayer)

    def playGames(self, num):
        num = int(num / 2)
        oneWon = twoWon = draws = 0
        for _ in range(num):
            gameResult = self.playGame()
            if gameResult == 1:
                oneWon += 1
            elif gameResult == -1:
                twoWon += 1
            else:
                draws += 1
        self.player1, self.player2 = self.player2, self.player1
        for _ in range(num):
            gameResult = self.playGame()
            if gameResult == -1:
                oneWon += 1
            elif gameResult == 1:
                twoWon += 1
            else:
                draws += 1
        return oneWon, twoWon, draws


class Coach:
    def __init__(self, game, nnet, args):
        self.game = game
        self.nnet = nnet
        self.pnet = self.nnet.__class__(self.game)  # the competitor network
        self.args = args
        self.mcts = MCTS(self.game, self.nnet, self.args)
        self.trainExamplesHistory = []

    def executeEpisode(self):
        trainExamples = []
        board = self.game.getInitBoard()
        self.curPlayer = 1
        episodeStep = 0

        while True:
            episodeStep += 1
            canonicalBoard = self.game.getCanonicalForm(board, self.curPlayer)
            temp = int(episodeStep < self.args.tempThreshold)

            pi = self.mcts.getActionProb(canonicalBoard, temp=temp)
            sym = self.game.getSymmetries(canonicalBoard, pi)
            for b, p in sym:
                trainExamples.append([b, self.curPlayer, p, None])

            action = np.random.choice(len(pi), p=pi)
            board, self.curPlayer = self.game.getNextState(board, self.curPlayer, action)

            r = self.game.getGameEnded(board, self.curPlayer)

            if r != 0:
                return [(x[0], x[2], r * ((-1) ** (x[1] != self.curPlayer))) for x in trainExamples]

    def learn(self):
        for i in range(1, self.args.numIters + 1):
            iterationTrainExamples = []
            for _ in range(self.args.numEps):
                self.mcts = MCTS(self.game, self.nnet, self.args)  # reset search tree
                iterationTrainExamples += self.executeEpisode()
            self.trainExamplesHistory.append(iterationTrainExamples)

            trainExamples = []
            for e in self.trainExamplesHistory:
                trainExamples.extend(e)
            np.random.shuffle(trainExamples)

            # training new network, keeping a copy of the old one
            self.nnet.save_checkpoint(folder=self.args.checkpoint, filename='temp.pth.tar')
            self.pnet.load_checkpoint(folder=self.args.checkpoint, filename='temp.pth.tar')
            pmcts = MCTS(self.game, self.pnet, self.args)

            print(f'Iter {i}: self-play done')
            loss_pi, loss_v = self.nnet.train(trainExamples)
            nmcts = MCTS(self.game, self.nnet, self.args)

            arena = Arena(lambda x: np.argmax(pmcts.getActionProb(x, temp=0)),
                          lambda x: np.argmax(nmcts.getActionProb(x, temp=0)), self.game)
            pwins, nwins, draws = arena.playGames(self.args.arenaCompare)

            # the repository logs ACCEPTING/REJECTING; one line shape here, whatever the seed decides
            accept = pwins + nwins == 0 or float(nwins) / (pwins + nwins) >= self.args.updateThreshold
            print('  NEW/PREV WINS : %d / %d ; DRAWS : %d ; accepted %d' % (nwins, pwins, draws, accept))
            if accept:
                self.nnet.save_checkpoint(folder=self.args.checkpoint, filename='best.pth.tar')
            else:
                self.nnet.load_checkpoint(folder=self.args.checkpoint, filename='temp.pth.tar')
        return loss_pi, loss_v


g = TicTacToeGame(3)
nnet = NNetWrapper(g)
c = Coach(g, nnet, args)
loss_pi, loss_v = c.learn()

# the trained net at the empty board: the prior over the 9 squares and its value
p, v = nnet.predict(g.getInitBoard())
entropy = float(-(p * np.log(p + EPS)).sum())
print('empty board: value %.4f policy entropy %.4f' % (float(v[0]), entropy))

mcts = MCTS(g, nnet, args)
rp = RandomPlayer(g).play
arena = Arena(lambda x: np.argmax(mcts.getActionProb(x, temp=0)), rp, g)
wins, losses, draws = arena.playGames(20)
print('vs random: %d wins %d losses %d draws' % (wins, losses, draws))
print(f'FINAL loss_pi={loss_pi:.4f} loss_v={loss_v:.4f} win_rate={wins / 20:.4f} '
      f'not_lost={(wins + draws) / 20:.4f} entropy={entropy:.4f}')
