"""Seeing inside recurrent networks: which units of a trained char-LM track features of its text
(`features`, `scoring`, the HTML page of `page`), and how gradients flow back through time in vanilla
RNN, LSTM and GRU cells (`gradient_flow`). The commands are ``rnnkit cells`` and ``rnnkit gradient-flow``."""
