"""The PUB paper's published numbers (Yuan, Cai & Dong, ICDM 2024), printed beside ours."""

PAPER_TABLE3_ES = """| Method (AliExpress_ES) | CTR | CTCVR | Average |
|---|---|---|---|
| Single Task Learning | 0.7252 | 0.8832 | 0.8042 |
| MMOE | 0.7290 | 0.8959 | 0.8124 |
| PLE | 0.7306 | 0.8930 | 0.8118 |
| MMOE+MGDA | 0.7294 | 0.8901 | 0.8098 |
| MMOE+NashMTL | 0.7285 | 0.8957 | 0.8121 |
| MMOE+IMTL-G | 0.7275 | 0.8922 | 0.8098 |
| MMOE+PCGrad | 0.7301‡ | 0.8915 | 0.8108 |
| MMOE+CAGrad | 0.7296 | 0.8934 | 0.8115 |
| MMOE+Uncertainty | 0.7286 | 0.8932 | 0.8109 |
| MMOE+FAMO | 0.7295 | 0.8941 | 0.8118 |
| MMOE+PUB | 0.7323‡ | 0.8967‡ | 0.8145‡ |
| PLE+PUB | 0.7318‡ | 0.8965‡ | 0.8142‡ |

(Table III, ES columns, excerpt; 5 seeds. The paper: PUB improves the average AUC significantly
with both backbones on all 4 countries; only 2 of 80 baseline averages beat their backbone.)"""


PAPER_TABLE4 = """| Method (AliExpress_ES) | CTR | CTCVR | Average |
|---|---|---|---|
| MMOE | 0.7290 | 0.8959 | 0.8124 |
| MMOE+PUB | 0.7316† | 0.8952 | 0.8134† |
| MMOE+PUB+Clippy | 0.7329† | 0.8954 | 0.8145† |
| MMOE+PUB+AdaTask | 0.7320 | 0.8962† | 0.8141† |
| PLE | 0.7306 | 0.8930 | 0.8118 |
| PLE+PUB | 0.7316† | 0.8946† | 0.8131† |
| PLE+PUB+Clippy | 0.7327† | 0.8942† | 0.8135† |
| PLE+PUB+AdaTask | 0.7315† | 0.8959† | 0.8137† |"""


PAPER_TABLE5 = """| Model | Base | NashMTL | PUB |
|---|---|---|---|
| MMOE | 558.26 | 702.31 (1.26×) | 651.36 (1.17×) |
| PLE | 844.24 | 1050.65 (1.24×) | 984.25 (1.17×) |

(seconds per epoch on AliExpress_ES, 22.3M rows, batch 4096, PUB solving every 10 steps;
"a noticeable drop in overall performance" when solving only every 100 steps.)"""


PAPER_TABLE1 = """| Method | Sim_task | p | Sim_share | p |
|---|---|---|---|---|
| LS | 0.130 | | 0.116 | |
| MGDA | 0.138 | 0.111 | 0.106 | 0.011 |
| IMTL-G | 0.128 | 0.483 | 0.102 | 0.017 |
| NashMTL | 0.144 | 0.052 | 0.1228 | 0.045 |

(AliExpress, Shared-Bottom / MMoE / PLE, 3 seeds; Fig. 4: 70% of pairs show higher AUC with
lower Diff, χ²(1) = 13.67, p < 0.001. PUB is not in the paper's Table I.)"""
