/* main.c — the blo command line: the table of subcommands, `blo --help`, `blo --version`,
 * and dispatch to `blo <command> [options]`. Each subcommand lives in its own cmd_*.c. */
#include "blo/blo.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_demo_run(const cli_cmd *cmd, int argc, char **argv);
int cli_methods_run(const cli_cmd *cmd, int argc, char **argv);
int cli_plot_run(const cli_cmd *cmd, int argc, char **argv);
int cli_hyperclean_run(const cli_cmd *cmd, int argc, char **argv);
int cli_graph_run(const cli_cmd *cmd, int argc, char **argv);
int cli_nas_run(const cli_cmd *cmd, int argc, char **argv);
int cli_meta_run(const cli_cmd *cmd, int argc, char **argv);
int cli_regsearch_run(const cli_cmd *cmd, int argc, char **argv);
int cli_causal_run(const cli_cmd *cmd, int argc, char **argv);
int cli_learnopt_run(const cli_cmd *cmd, int argc, char **argv);
int cli_deq_run(const cli_cmd *cmd, int argc, char **argv);
int cli_reweight_run(const cli_cmd *cmd, int argc, char **argv);

const cli_cmd cli_commands[] = {
    {"causal", "treatment effects: TARNet / CFR-MMD, hyperparameters or unit weights by hypergradient",
     "Individual treatment effects (Shalit, Johansson & Sontag, ICML 2017) on IHDP (10\n"
     "replications, shipped) or a CSV; each replication split 63/27/10 (train/val/test).\n"
     "  y = the network: representation Phi (ELU MLP), heads h_0, h_1; tau(x) = h_1 - h_0\n"
     "  f(x, y) = sum_i u_i (h_{t_i}(Phi(x_i)) - y_i)^2 / sum u + alpha MMD^2 + sum_l lam_l |W_l|^2\n"
     "  none:    train f once (alpha = 0: TARNet; --model cfr: CFR-MMD)\n"
     "  hyper:   x = (log alpha, log lam_1..L), F by hypergradient through T inner steps\n"
     "  weights: x = log u_i (one per training unit)\n"
     "  alpha:   x = log alpha; grid: argmin over alpha in --grid of F, one training each\n"
     "  grid-alpha: alpha started from the argmin of F over --grid (--grid-steps each)\n"
     "  F (--criterion nn, default) = mean_val (tau(x_i) - tau_nn_i)^2, tau_nn_i imputed from\n"
     "  the nearest unit of the other arm: it scores effects and reads no counterfactual truth;\n"
     "  --criterion factual: arm-balanced validation MSE of the factual outcome.\n"
     "Reports sqrt(PEHE) and eps_ATE within sample (train + val) and out of sample (test),\n"
     "per replication and mean +- standard error (mu0, mu1 are used only to score).",
     cli_causal_run},
    {"hyperclean", "data hyper-cleaning: learn per-example weights that discard noisy labels",
     "Data hyper-cleaning (Franceschi et al. ICML 2017; protocol of Liu et al. NeurIPS 2021):\n"
     "from the MNIST-layout training split, n-train examples with a fraction of labels\n"
     "corrupted, n-val clean validation and n-test test examples.\n"
     "  x_i  one weight per training example (sigma(x_i) in (0, 1), start 0)\n"
     "  f(x, y) = (1/n) sum_i sigma(x_i) CE(model_y(X_i), noisy label_i)   (lower level)\n"
     "  F(x, y) = mean CE on the validation set                           (upper level)\n"
     "The cleaner keeps x_i >= 0; F1 scores it against the examples whose label is intact.\n"
     "Reports test accuracy, cleaner precision / recall / F1, and three baselines: trained\n"
     "on the noisy set, on the validation set only, and on the clean part + validation;\n"
     "beside them the cleaner's use, a classifier trained the same way on the kept examples\n"
     "(noisy labels) + validation.",
     cli_hyperclean_run},
    {"graph", "graph structure learning (LDS) with a GCN: learn which edges help",
     "Learning discrete structures (LDS; Franceschi, Niepert, Pontil, He, ICML 2019):\n"
     "  x = theta in [0, 1]^{NxN}, one Bernoulli probability per node pair (symmetric, zero\n"
     "      diagonal), start 1 on the given edges; clipped and symmetrised after each step\n"
     "  y = a 2-layer GCN (Kipf & Welling 2017): logits = A^ relu(A^ X W1) W2,\n"
     "      A^ = D^-1/2 (A + I) D^-1/2, dropout 0.5, L2 on W1\n"
     "  f = training cross-entropy on A ~ Bernoulli(theta), a fresh sample per inner step\n"
     "  F = validation cross-entropy on a fresh sample (no dropout)\n"
     "The gradient reaches theta through the sample by the straight-through estimator\n"
     "A = S(theta) + stop_grad(M - S(theta)). Test prediction: the mean softmax over\n"
     "--samples graphs. Data with no edges (wine, cancer, digits) starts from the kNN graph\n"
     "of its features (kNN-LDS). theta is dense: an outer iteration on Cora (N = 2708, 29 MB\n"
     "per N x N) peaks near 15 N x N (435 MiB; the sample and A^ are one fused op); N up to\n"
     "about 8000 fits in 4 GB.",
     cli_graph_run},
    {"nas", "DARTS architecture search (nas search|train|derive)",
     "Differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019): x = the cell\n"
     "architecture weights alpha (softmax over 8 candidate ops per edge), y = the supernet's\n"
     "weights; f = training loss on one half of the search data, F = loss on the other.\n"
     "  blo nas search [options]                    search, print and save the genotype\n"
     "  blo nas train --genotype FILE | --random    train a discrete network from scratch\n"
     "  blo nas derive ALPHA_LOG...                 a genotype from alpha logs (averaged)",
     cli_nas_run},
    {"meta", "meta-learning (MAML, FOMAML, iMAML, Meta-SGD, meta features): blo meta sinusoid|fewshot",
     "Sinusoid regression (Finn et al. ICML 2017): tasks y = A sin(x - phase), A ~ U[0.1, 5],\n"
     "phase ~ U[0, pi], x ~ U[-5, 5]; learner MLP 1-40-40-1 (ReLU).\n"
     "  x = theta, the initial weights (and with --meta-sgd the per-parameter step sizes)\n"
     "  y = the weights of the B tasks of a meta-batch, started at theta (init from_x)\n"
     "  f(x, y) = sum_b support MSE_b (+ prox/2 |y_b - theta|^2)          (lower level)\n"
     "  F(x, y) = mean_b query MSE_b after T inner SGD steps              (upper level)\n"
     "--method rhg is MAML, first_order FOMAML, cg with --prox iMAML. Reports the MSE of\n"
     "held-out tasks after 0 / 1 / 5 / 10 test-time SGD steps on K points (mean and 95% CI),\n"
     "next to a pretrained baseline (one network fitted to all tasks, then fine-tuned).\n"
     "\n"
     "Few-shot classification (blo meta fewshot): each class of an MNIST-layout set at 0 / 90 /\n"
     "180 / 270 degrees is its own class (40 for Fashion-MNIST), split into meta-train and\n"
     "meta-test classes: by default by base class (all 4 rotations of a garment on one side,\n"
     "28 / 12, so no image is on both sides); --class-split class splits rotation classes one\n"
     "by one. --images DIR reads a class-per-folder PNG tree instead (DIR/<class>/*.png, as\n"
     "Omniglot or miniImageNet converted to PNG: gray, resized to --image-size by area\n"
     "averaging); --rotations 1 takes its classes as they are, without the 4 quarter turns.\n"
     "N-way K-shot episodes (default 5-way 1-shot, 15 queries), meta-batches of B = 4.\n"
     "The network: a body of --layers ReLU layers of width H (784-64-64) and a linear head.\n"
     "  --learner maml      x = theta (the whole network), y = the B episodes' copies started\n"
     "                      at theta; f = sum_b support CE_b, F = mean_b query CE_b after T SGD\n"
     "                      steps; rhg is MAML, first_order (the default) FOMAML\n"
     "  --learner hyperrep  meta feature learning (Franceschi et al. ICML 2018): x = the body,\n"
     "                      y = the B episodes' heads started at zero; f = sum_b (support CE_b +\n"
     "                      lambda/2 |head_b|^2), F = mean_b query CE_b; the head problem is\n"
     "                      strongly convex, so rhg, cg (implicit) and first_order all apply;\n"
     "                      --normalize scales the features to unit length before the head,\n"
     "                      which keeps fixed head steps stable (cg diverges without it)\n"
     "  --learner pretrain  the baseline: the body and one head over all meta-train classes,\n"
     "                      trained by Adam on minibatches (--pretrain-steps, -batch, -lr)\n"
     "Reports the query accuracy over --eval-episodes meta-test episodes (mean and 95% CI):\n"
     "maml fine-tunes theta by --eval-steps SGD steps (default T) of --inner-lr; hyperrep and\n"
     "pretrain fit a fresh head from zero on the support features by the same steps.",
     cli_meta_run},
    {"regsearch", "regularization search: per-feature L2 strengths of a logistic regression",
     "Regularization search (Bengio 2000; Pedregosa, ICML 2016): one L2 strength per feature\n"
     "(or per group of features) of a logistic regression, learned on the validation loss.\n"
     "  x_g  log-strength of group g, lambda_g = exp(x_g); the search keeps lambda in the box\n"
     "       [--lambda-min, --lambda-max] and starts at --lambda0 (0: the grid's best)\n"
     "  y    (w [d], b) for two classes, (W [d, C], b [C]) softmax for C > 2\n"
     "  f(x, y) = mean CE(train) + 1/2 sum_j lambda_g(j) |W_j|^2   (lower; b not penalised)\n"
     "  F(x, y) = mean CE(validation)                               (upper)\n"
     "The lower level is strongly convex, hence the default method cg (implicit function\n"
     "theorem) on T warm-started SGD steps; --inner-lr 0 (the default) takes 1/L with\n"
     "L = c lambda_max(X'X/n) + lambda_max box (c = 1/4 logistic, 1/2 softmax; Adam: 0.01).\n"
     "The reference is the best SINGLE strength of a log-spaced grid (--grid values over\n"
     "[--grid-min, --grid-max]), each a plain fit to convergence (L-BFGS). Both final models\n"
     "are refitted to convergence and reported side by side: validation and test loss and\n"
     "accuracy. Data: --data FILE (LIBSVM or CSV, split --train-frac / --val-frac / rest by\n"
     "--seed), or without it Fashion-MNIST T-shirt/top vs shirt (--classes 0,6), 4000 examples.",
     cli_regsearch_run},
    {"learnopt", "a learned optimizer: meta-train a coordinate-wise MLP that trains networks (train|apply)",
     "A learned optimizer (Andrychowicz et al. NeurIPS 2016; Metz et al. ICML 2019): one small\n"
     "MLP, shared by every coordinate, makes each step of an optimizee's training.\n"
     "  per parameter: m1, m2 = momentum averages of g (beta 0.9, 0.99), v of g^2 (0.999),\n"
     "  r = sqrt(v^) + eps; u = (g/r, m1^/r, m2^/r, theta) (^: bias-corrected)\n"
     "  learned:  theta <- theta - e^l (W2 tanh(W1 u + b1) + b2 + w_s u)   (starts as Adam)\n"
     "  momentum: m <- mu m + g, theta <- theta - lr m;   adam: theta <- theta - lr m1^/r\n"
     "  x = (W1, b1, W2, b2, w_s, l); y = (theta, m1, m2, v, k, s): the optimizee and its state\n"
     "  f(x, y) = minibatch cross-entropy of the optimizee (lower level: K learned steps)\n"
     "  F(x, y) = s / K, the mean minibatch loss along the window       (upper level)\n"
     "Meta-training reverses through each window of K steps (trhg, window K) from the last\n"
     "window's end (warm start: the truncated unroll); every --reset-every windows the\n"
     "optimizee starts again from a fresh initialisation. Optimizee: an MLP 784-H(-H)-10 on\n"
     "--n-train Fashion-MNIST images.\n"
     "  blo learnopt train [options]                  meta-train, write --out FILE\n"
     "  blo learnopt apply --optimizer FILE [options] train a network with it\n"
     "  blo learnopt apply --baseline adam --lr LR    the same with a hand-made optimizer",
     cli_learnopt_run},
    {"deq", "implicit models: an equilibrium layer z* = sigma(W z* + U x + b) and a linear head",
     "Deep equilibrium / monotone operator networks (Bai, Kolter & Koltun 2019; Winston &\n"
     "Kolter 2020) on an MNIST-layout set (Fashion-MNIST by default):\n"
     "  lower level: z* = Phi(z*) = sigma(W z* + U x + b), found by the --solver\n"
     "  upper level: mean CE(Wo z* + bo, label), minibatch Adam over theta = (W, U, b, Wo, bo)\n"
     "  implicit:  u = (dPhi/dz)' u + dL/dz*, dL/dtheta = (dPhi/dtheta)' u   (at z*)\n"
     "  jfb:       dL/dtheta = (dPhi/dtheta)' dL/dz*          (Fung et al. 2022)\n"
     "  phantom:   backprop through k steps z <- (1-lambda) z + lambda Phi(z) from z*\n"
     "  unrolled:  backprop through every forward iteration from z = 0\n"
     "Per epoch: test accuracy, mean forward / backward iterations and residuals, examples\n"
     "whose solve stopped above --tol. --baseline adds the explicit network of the same size.",
     cli_deq_run},
    {"reweight", "learn to weight noisy or imbalanced training examples (Meta-Weight-Net)",
     "Learning to weight training examples on the whole MNIST-layout training split: a clean\n"
     "meta set (--n-meta) is taken out, the rest gets label noise or a long-tailed imbalance.\n"
     "  y = w, the classifier Linear(d, H) -> ReLU -> Linear(H, C), or (--classifier conv)\n"
     "      conv3x3(K) -> ReLU -> maxpool 2 -> conv3x3(2K) -> ReLU -> maxpool 2 -> Linear; l_i = CE_i(w)\n"
     "  network:     x = phi, V(l; phi) = sigmoid(MLP 1 -> 100 -> 1) (Shu et al. NeurIPS 2019)\n"
     "               f(phi, w) = sum_i V(l_i) l_i / sum_i V(l_i) on a minibatch (--norm batch: / B)\n"
     "  per-example: x = eps = 0 per batch, f = sum_i eps_i l_i, weights max(-dF/deps, 0)\n"
     "               normalised to sum 1 (learning to reweight, Ren et al. ICML 2018)\n"
     "  none:        f = mean_i l_i (plain cross-entropy)\n"
     "  F(phi, w) = mean CE on a meta minibatch\n"
     "The online scheme, per minibatch: virtual step w^ = w - lr grad_w f (recorded), phi step\n"
     "on dF(w^)/dphi (--meta-opt), real step on grad_w f with the new phi (SGD with momentum);\n"
     "lr (and with it the virtual step's) divided by 10 after each --lr-decay epoch.\n"
     "--scheme solver runs --method over --inner minibatches from a warm start instead (the\n"
     "outer iterations are --epochs worth of minibatches; --outer is not read).\n"
     "Reports the test accuracy per epoch and the learned weight curve V(l) (--curve).",
     cli_reweight_run},
    {"demo", "engine demo: train a tiny MLP with blo_grad, check an HVP (no data needed)",
     "Fits a 2-layer tanh MLP by full-batch gradient descent on a synthetic 2-class problem\n"
     "(points in the square [-1, 1]^2, class 1 inside a circle), with the loss, its gradient\n"
     "and the update all computed by blo ops and blo_grad in an arena that is rewound every\n"
     "step. It then checks a Hessian-vector product of the final loss against central finite\n"
     "differences of the gradient, |Hv - (g(w + e v) - g(w - e v)) / 2e| / |Hv|, and fails\n"
     "(exit 1) if that residual exceeds the tolerance for the dtype, or if training did not\n"
     "lower the loss.\n"
     "Progress goes to stderr; the summary (or, with --json, one JSON object with\n"
     "initial_loss, final_loss, accuracy, hvp_residual) to stdout.",
     cli_demo_run},
    {"methods", "the hypergradient methods of the registry, one line of maths each",
     "Lists every method --method accepts. The hypergradient of min_x F(x, y*(x)),\n"
     "y*(x) = argmin_y f(x, y), is dF/dx = dF/dx|_y + (dy*/dx)^T dF/dy; each method computes\n"
     "or approximates the second term (or avoids it) in its own way.",
     cli_methods_run},
    {"plot", "draw convergence curves of run logs (--log files) to SVG or PNG",
     "usage: blo plot [--out FILE] [--x iter|seconds|both] LOG [LOG ...]\n"
     "Reads logs written by any task's --log (CSV or JSON lines) and draws the upper-level\n"
     "loss, test accuracy, lower-level loss and hypergradient norm against iterations and\n"
     "wall time, one colour per log, to compare methods. The format follows the extension.",
     cli_plot_run},
};
const int cli_n_commands = (int)(sizeof cli_commands / sizeof cli_commands[0]);

static void print_usage(FILE *f) {
    fprintf(f,
            "blo %s — gradient-based bilevel optimization: min_x F(x, y*(x)),\n"
            "y*(x) = argmin_y f(x, y)\n\n"
            "usage: blo <command> [options]\n"
            "       blo <command> --help\n"
            "       blo --help | --version\n\ncommands:\n",
            BLO_VERSION_STRING);
    for (int i = 0; i < cli_n_commands; i++)
        fprintf(f, "  %-12s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\nconventions shared by every command:\n"
               "  exit codes   0 ok; 1 the run failed (diverged, non-finite values, a failed\n"
               "               check); 2 bad usage or bad input (the message names the option)\n"
               "  output       progress on stderr, results on stdout; --json prints exactly one\n"
               "               JSON object on stdout; -q silences progress\n"
               "  options      --seed S, --threads N (0 = all cores), --dtype f32|f64, given as\n"
               "               '--opt VALUE' or '--opt=VALUE'\n");
}

int main(int argc, char **argv) {
    /* OpenMP workers that spin after each parallel region steal the cores from the next gemm
     * (and from other processes); blo's regions are short and frequent, so sleeping workers
     * are faster overall. Must be set before the OpenMP runtime starts; a user's value wins. */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    /* Under mpirun: start MPI (blo/dist.h); a plain process stays one rank. */
    char dist_err[512];
    if (blo_dist_init(&argc, &argv, dist_err, sizeof dist_err)) {
        fprintf(stderr, "blo: %s\n", dist_err);
        return CLI_EXIT_USAGE;
    }
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("blo %s\n", BLO_VERSION_STRING);
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < cli_n_commands; i++)
        if (!strcmp(name, cli_commands[i].name))
            return cli_commands[i].run(&cli_commands[i], argc - 1, argv + 1);
    fprintf(stderr, "blo: unknown command '%s' (see 'blo --help')\n", name);
    return CLI_EXIT_USAGE;
}
