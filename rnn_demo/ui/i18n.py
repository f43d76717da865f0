"""The page in English and Simplified Chinese: the one ``gr.I18n`` object, its tables, and the
language of a request for the text the server builds.

Two kinds of text, two ways:

- Text fixed when the page is built (labels, info texts, placeholders, buttons, tab names,
  Markdown): pass ``i18n("section.name")`` where the string went. The browser picks the table by
  its language (or the footer's Settings), so this needs no request. Text built from data when the
  page is built (the title names the zoo's cells) goes through :func:`page_text`, which formats
  both languages' templates and gives the result its own key. Only the first ``__i18n__`` marker of
  a string is translated by the browser, so every such string is one key, never a concatenation.
- Text a handler builds (status lines, sentences, HTML views): take ``request: gr.Request``, get
  ``language = request_language(request)`` and build it with ``server_text("section.name",
  language, **fields)``.

A new tab adds its section (its keys under its own prefix) to both ``EN`` and ``ZH``;
tests/test_i18n.py fails on a key one table lacks, or a key the built page uses that neither has.
The API endpoints never call this module: their answers stay English.
"""

from __future__ import annotations

import hashlib
import json
import re
from http.cookies import CookieError, SimpleCookie
from urllib.parse import unquote

import gradio as gr
from gradio.i18n import I18nData

from rnn_demo.serving.requests import MAX_VIEW_CHARS, RANDOM_SEED

ENGLISH, CHINESE = "en", "zh-CN"
LANGUAGES = (ENGLISH, CHINESE)
# The Accept-Language tags answered in Simplified Chinese (lower case): zh, zh-CN, zh-Hans, zh-SG and
# the like. The page's own table is keyed by Gradio's code zh-CN (the one Gradio matches for a zh-CN
# browser); Traditional Chinese (zh-TW, zh-HK) has no table and gets English, like the page.
_SIMPLIFIED = re.compile(r"^zh(-(cn|sg|hans|hans-[a-z0-9]+|my))?$")

# ---- the tables -----------------------------------------------------------------------------------
# Keys: "<where>.<what>". Values may be str.format templates (fields in braces) only where
# page_text or server_text fills them; everything else is the exact text shown.

EN: dict[str, str] = {
    # the page around the tabs (app.py)
    "page.header": "# Character-level {title}\n"
    "Small recurrent networks trained on tiny Shakespeare continue your prompt one character at a time, and an "
    "LSTM trained on the Tang poems writes regular verse in the Poems 诗 tab.",
    "page.and": " and ",
    "page.list_separator": ", ",
    "page.no_models": "### ⚠️ No models are available\n{problems}\n\nTrain some into `models/<cell>-h<size>/` "
    "(see the README), or point ${variable} at a folder or a Hub repo id, and restart the app.",
    # shared by several tabs
    "cell.rnn": "RNN (hand-written)",
    "cell.gru": "GRU",
    "cell.lstm": "LSTM",
    "cell.tang": "Tang poems (唐诗): LSTM",
    "model.size_choice": "{layers}{size} ({params} params)",
    "common.prompt": "Prompt",
    "common.cell_type": "Cell type",
    "common.hidden_size": "Hidden size",
    "common.temperature": "Temperature",
    "common.seed": "Seed",
    "common.stop": "Stop",
    # Generate
    "generate.tab": "Generate",
    "generate.prompt_placeholder": "Text to continue (may be empty)",
    "generate.temperature_info": "0 = greedy (always the most likely character); higher = wilder",
    "generate.max_new_chars": "Max new characters",
    "generate.advanced": "Advanced",
    "generate.top_k": "Top-k",
    "generate.top_k_info": "sample among the k most likely characters (0 = all)",
    "generate.top_p": "Top-p",
    "generate.top_p_info": "sample among the most likely characters holding this much probability (1 = all)",
    "generate.seed_info": f"{RANDOM_SEED} = random; the same seed gives the same text",
    "generate.button": "Generate",
    "generate.text": "Text",
    "generate.examples": "Example prompts",
    # Inside the network
    "inside.tab": "Inside the network",
    "inside.intro": "Read a text with a model from its first character, and see what it expected at each one, "
    "and what one of its hidden units does along the text.",
    "inside.text": f"Text (up to {MAX_VIEW_CHARS:,} characters)",
    "inside.read": "Read the text",
    "inside.generate": "Generate a text",
    "inside.expected_tab": "What it expected",
    "inside.click_a_character": "Click a character of the text to see what the model expected there.",
    "inside.title_first": "{char!r}: the first character, not predicted",
    "inside.title_char": "{char!r}: p = {prob:.4f}, {bits:.2f} bits. Expected: {likeliest}",
    "inside.alternatives": "Top alternatives",
    "inside.neuron_tab": "One neuron",
    "inside.layer": "Layer",
    "inside.unit": "Unit",
    "inside.layer_choice": "layer {layer}",
    "inside.layer_bottom": "layer {layer} (next to the input)",
    "inside.layer_top": "layer {layer} (top)",
    "inside.units_intro": "**Interesting units**: the units whose activation follows a feature of this text most "
    "closely (inside quotes or brackets, position in the line, the first line after a speaker's name, "
    "uppercase, vowel, space), by |correlation|. Click a row to show its unit.",
    # Sizes side by side
    "poems.tab": "Poems 诗",
    "poems.intro": "A Tang poem in a regular form, written by a character-level LSTM trained on the poems of "
    "全唐诗. The form, the acrostic, the first line, the rhyme and the tones hold by construction: at each "
    "place only the characters the rules allow can be drawn, and the model chooses among them.",
    "poems.form": "Form",
    "poems.rhyme": "Rhyme (平水韵)",
    "poems.tones": "Tones (格律: 平仄)",
    "poems.acrostic": "Acrostic (藏头)",
    "poems.acrostic_info": "empty, or one character per line, each beginning its line",
    "poems.first_line": "First line",
    "poems.first_line_info": "empty, or the poem's first line",
    "poems.mood": "Mood",
    "poems.mood_info": "words that set the mood, like a title (not part of the poem)",
    "poems.seed_info": "the same seed writes the same poem; -1 = random",
    "poems.button": "Write a poem",
    "poems.check_title": "### Check a poem",
    "poems.check_intro": "Paste any poem, or check the one just written: each character's tone, the rhyme groups of "
    "the line ends, and the probability the poem model gave each character, coloured as in Inside the network "
    "(hover over a character for the characters it expected there). Places that break the tone rules are "
    "outlined in red.",
    "poems.check_text": "Poem (couplets one a row, or one line a row)",
    "poems.check_button": "Check",
    "poems.legend": "Above each character its tone in the rhyme book: 平 level, 仄 oblique, both for a "
    "character with two readings, ? for one the book lacks. The rhyming ends are underlined.",
    "compare.tab": "Sizes side by side",
    "compare.intro": "Every hidden size of one cell continues the same prompt with the same seed, one column each. "
    "Each column names its model's validation bits per character (lower is better; the Models tab "
    "has them all). The same seed in the Generate tab gives the same text.",
    "compare.new_chars": "New characters",
    "compare.seed_info": "-1 = one random seed for all",
    "compare.button": "Compare",
    # Models
    "models.tab": "Models",
    "models.intro": "Every model the demo can use. Bits per character: the average cross-entropy (base 2) of "
    "predicting each next character of the validation and test text; lower is better.",
    "models.plot_title": "Validation bits per character against size (lower is better)",
    "models.plot_label": "bits per character against parameters",
    "models.table": "{table}",
    "models.column_cell": "cell",
    "models.column_hidden_size": "hidden size",
    "models.column_layers": "layers",
    "models.column_parameters": "parameters",
    "models.column_val": "val bits/char",
    "models.column_test": "test bits/char",
    "models.column_minutes": "training (min)",
    "models.column_size": "size (MB)",
    "models.column_trained_on": "trained on",
    "models.plot_parameters": "parameters",
    "models.plot_bits": "validation bits/char",
    "models.plot_cell": "cell",
    "models.skipped": "Skipped:\n{problems}",
    # About (the long texts are registered by rnn_demo/ui/about_tab.py, see add_texts)
    "about.tab": "About",
    "about.broken_code": "Broken: the state is lost",
    "about.working_code": "Working: {function} in rnn_demo/model/rnn.py",
    "about.svg_title": "A recurrent network unrolled over {steps} time steps",
    "about.svg_description": "Each input character goes into a copy of the same cell, with the same weights W_ih "
    "and W_hh. Each cell also takes the state from the step before and passes its new state to the next step; "
    "above each cell are the scores for the next character.",
    "about.svg_input": "character {step}",
    "about.svg_output": "scores for character {step}",
    "about.svg_caption": "Every box is the same cell with the same weights; only the state h changes from step to step.",
    # ---- server-built text (server_text) ----
    "status.generating": "generating…",
    "status.done": "done",
    "status.stopped": "stopped",
    "status.progress": "{state} {chars:,} characters in {seconds:.2f} s ({speed:,.0f} chars/s)",
    "status.skipped": "skipped characters the model does not know: {shown}",
    "model.line": "**{name}** · {shape} · {params:,} parameters · {score}",
    "model.validation": "validation {bpc:.3f} bits/char",
    "model.no_validation": "no validation score",
    "inside.summary": "**{model}** read {chars:,} characters: {bpc:.3f} bits/char.",
    "inside.summary_skipped": " Skipped (not in its vocabulary): {shown}",
    "inside.first_character": "Character 1, {char!r}, is the first: nothing came before it to predict it.",
    "inside.character": "Character {number}, {char!r}: the model gave it p = {prob:.4f} "
    "({bits:.2f} bits of surprise). What it expected there:",
    "inside.confidence_legend": "Probability the model gave each character:",
    "inside.no_prediction": "first character (no prediction)",
    "inside.activation_legend": "Activation after each character:",
    "inside.read_again": "This reading is no longer kept on the server: press Read the text again.",
    "inside.column_unit": "unit",
    "inside.column_feature": "follows",
    "inside.column_correlation": "correlation",
    "inside.feature_quotes": "inside quotes or brackets",
    "inside.feature_position": "position in the line",
    "inside.feature_speaker": "first line after a speaker's name",
    "inside.feature_uppercase": "uppercase",
    "inside.feature_vowel": "vowel",
    "inside.feature_space": "space",
    "poems.rhyme_group": "The even lines rhyme in {group}.",
    "poems.no_rhyme": "The even lines share no rhyme group.",
    "poems.tones_broken": "{count} places break the tone rules.",
    "poems.check_form": "{name} ({form}).",
    "poems.check_no_form": "Not a regular form (4 or 8 lines of 5 or 7 characters): the tones are shown, 格律 is "
    "not checked.",
    "poems.tones_ok": "Every place keeps the tone rules (格律).",
    "poems.check_bits": "The model read it at {bpc:.2f} bits/char.",
    "poems.broken_place": "line {line}, character {place}: {tone} expected",
    "poems.end_groups": "rhyme groups of the last character",
    "poems.expected": "p = {prob:.4f}; the model expected: {expected}",
    "compare.seed_used": "Seed **{seed}**",
    "compare.score": "{bpc:.3f} val bits/char",
    "compare.progress": "{chars:,} new characters",
    "compare.done": "done",
    "compare.writing": "writing…",
}

ZH: dict[str, str] = {
    "page.header": "# 字符级 {title}\n在莎士比亚小语料（tiny Shakespeare）上训练的小型循环神经网络，一次一个字符地续写你的开头；"
    "在《全唐诗》上训练的 LSTM 在“诗”页中写近体诗。",
    "page.and": " 和 ",
    "page.list_separator": "、",
    "page.no_models": "### ⚠️ 没有可用的模型\n{problems}\n\n请先训练模型并放进 `models/<cell>-h<size>/`（见 README），"
    "或把 ${variable} 指向一个文件夹或 Hub 仓库 id，然后重启应用。",
    "cell.rnn": "RNN（手写）",
    "cell.gru": "GRU",
    "cell.lstm": "LSTM",
    "cell.tang": "唐诗 LSTM",
    "model.size_choice": "{layers}{size}（{params} 个参数）",
    "common.prompt": "开头文本",
    "common.cell_type": "单元类型",
    "common.hidden_size": "隐藏层大小",
    "common.temperature": "温度",
    "common.seed": "随机种子",
    "common.stop": "停止",
    "generate.tab": "生成",
    "generate.prompt_placeholder": "要续写的文本（可以为空）",
    "generate.temperature_info": "0 = 贪心（总是选最可能的字符）；越高越随意",
    "generate.max_new_chars": "最多生成字符数",
    "generate.advanced": "高级设置",
    "generate.top_k": "Top-k",
    "generate.top_k_info": "只在最可能的 k 个字符中采样（0 = 不限）",
    "generate.top_p": "Top-p",
    "generate.top_p_info": "只在累计概率达到该值的最可能字符中采样（1 = 不限）",
    "generate.seed_info": f"{RANDOM_SEED} = 随机；相同的种子生成相同的文本",
    "generate.button": "生成",
    "generate.text": "文本",
    "generate.examples": "示例开头",
    "inside.tab": "网络内部",
    "inside.intro": "让模型从第一个字符开始读一段文本，看看它在每个字符处预期的是什么，以及它的某个隐藏单元沿着文本如何变化。",
    "inside.text": f"文本（最多 {MAX_VIEW_CHARS:,} 个字符）",
    "inside.read": "读取文本",
    "inside.generate": "生成一段文本",
    "inside.expected_tab": "模型的预期",
    "inside.click_a_character": "点击文本中的一个字符，查看模型在那里预期的是什么。",
    "inside.title_first": "{char!r}：第一个字符，没有预测",
    "inside.title_char": "{char!r}：p = {prob:.4f}，{bits:.2f} 比特。模型预期：{likeliest}",
    "inside.alternatives": "最可能的候选",
    "inside.neuron_tab": "单个神经元",
    "inside.layer": "层",
    "inside.unit": "单元",
    "inside.layer_choice": "第 {layer} 层",
    "inside.layer_bottom": "第 {layer} 层（紧挨输入）",
    "inside.layer_top": "第 {layer} 层（最上层）",
    "inside.units_intro": "**值得关注的单元**：激活值与这段文本的某个特征最吻合的单元（是否在引号或括号内、在行内的位置、"
    "说话人名字后的第一行、大写字母、元音、空格），按 |相关系数| 排序。点击一行即可显示该单元。",
    "poems.tab": "诗",
    "poems.intro": "用在《全唐诗》上训练的字符级 LSTM 写一首近体诗。体裁、藏头、首句、押韵和平仄由构造保证："
    "每个位置只能抽取规则允许的字，由模型在其中选择。",
    "poems.form": "体裁",
    "poems.rhyme": "押韵（平水韵）",
    "poems.tones": "格律（平仄）",
    "poems.acrostic": "藏头",
    "poems.acrostic_info": "留空，或每句一个字，作为该句的第一个字",
    "poems.first_line": "首句",
    "poems.first_line_info": "留空，或诗的第一句",
    "poems.mood": "意境",
    "poems.mood_info": "像标题一样定下意境的词（不属于诗的正文）",
    "poems.seed_info": "相同的种子写出相同的诗；-1 = 随机",
    "poems.button": "写诗",
    "poems.check_title": "### 检查一首诗",
    "poems.check_intro": "粘贴任意一首诗，或检查刚写好的那首：每个字的平仄、各句末字的韵部，以及诗模型给每个字的概率，"
    "颜色与“网络内部”中的相同（鼠标停在字上可看到模型在那里预期的字）。不合平仄的位置用红框标出。",
    "poems.check_text": "诗（每行一联，或每行一句）",
    "poems.check_button": "检查",
    "poems.legend": "每个字上方是它在韵书中的声调：平、仄，有两种读音的字两者都标，韵书未收的字标 ?。韵脚加下划线。",
    "compare.tab": "不同大小对比",
    "compare.intro": "同一种单元的每个隐藏层大小用相同的种子续写同一个开头，每个模型一列。每列标出该模型在验证集上的"
    "每字符比特数（越低越好；“模型”标签页列出了全部模型）。在“生成”标签页使用相同的种子会得到相同的文本。",
    "compare.new_chars": "新字符数",
    "compare.seed_info": "-1 = 所有模型共用一个随机种子",
    "compare.button": "对比",
    "models.tab": "模型",
    "models.intro": "本演示可以使用的全部模型。每字符比特数（bits/char）：预测验证集和测试集文本中每个下一字符的"
    "平均交叉熵（以 2 为底）；越低越好。",
    "models.plot_title": "验证集每字符比特数与模型大小的关系（越低越好）",
    "models.plot_label": "每字符比特数与参数量",
    "models.table": "{table}",
    "models.column_cell": "单元",
    "models.column_hidden_size": "隐藏维度",
    "models.column_layers": "层数",
    "models.column_parameters": "参数量",
    "models.column_val": "验证集 比特/字符",
    "models.column_test": "测试集 比特/字符",
    "models.column_minutes": "训练时间（分钟）",
    "models.column_size": "大小（MB）",
    "models.column_trained_on": "训练设备",
    "models.plot_parameters": "参数量",
    "models.plot_bits": "验证集 比特/字符",
    "models.plot_cell": "单元",
    "models.skipped": "已跳过：\n{problems}",
    "about.tab": "关于",
    "about.broken_code": "有错误的版本：状态丢失了",
    "about.working_code": "正确的版本：rnn_demo/model/rnn.py 中的 {function}",
    "about.svg_title": "按时间展开 {steps} 步的循环神经网络",
    "about.svg_description": "每个输入字符进入同一个单元的一份副本，权重 W_ih 和 W_hh 都相同。每个单元还接收上一步的状态，"
    "并把新状态传给下一步；每个单元上方是下一个字符的得分。",
    "about.svg_input": "第 {step} 个字符",
    "about.svg_output": "第 {step} 个字符的得分",
    "about.svg_caption": "每个方框都是同一个单元、同样的权重；每一步之间变化的只有状态 h。",
    "status.generating": "正在生成…",
    "status.done": "完成",
    "status.stopped": "已停止",
    "status.progress": "{state}：{chars:,} 个字符，用时 {seconds:.2f} 秒（{speed:,.0f} 字符/秒）",
    "status.skipped": "跳过了模型不认识的字符：{shown}",
    "model.line": "**{name}** · {shape} · {params:,} 个参数 · {score}",
    "model.validation": "验证集 {bpc:.3f} 比特/字符",
    "model.no_validation": "没有验证集分数",
    "inside.summary": "**{model}** 读取了 {chars:,} 个字符：{bpc:.3f} 比特/字符。",
    "inside.summary_skipped": " 已跳过（不在词表中）：{shown}",
    "inside.first_character": "第 1 个字符 {char!r} 是开头：它前面没有任何内容可以用来预测它。",
    "inside.character": "第 {number} 个字符 {char!r}：模型给它的概率 p = {prob:.4f}（{bits:.2f} 比特的意外程度）。"
    "模型在这里预期的是：",
    "inside.confidence_legend": "模型给每个字符的概率：",
    "inside.no_prediction": "第一个字符（没有预测）",
    "inside.activation_legend": "每个字符之后的激活值：",
    "inside.read_again": "服务器上已不再保留这次读取的结果：请再点一次“读取文本”。",
    "inside.column_unit": "单元",
    "inside.column_feature": "跟随的特征",
    "inside.column_correlation": "相关系数",
    "inside.feature_quotes": "在引号或括号内",
    "inside.feature_position": "在行中的位置",
    "inside.feature_speaker": "说话人名字后的第一行",
    "inside.feature_uppercase": "大写字母",
    "inside.feature_vowel": "元音字母",
    "inside.feature_space": "空格",
    "poems.rhyme_group": "偶数句押{group}。",
    "poems.no_rhyme": "偶数句不同韵。",
    "poems.tones_broken": "有 {count} 处不合平仄。",
    "poems.check_form": "{name}（{form}）。",
    "poems.check_no_form": "不是近体诗的格式（4 或 8 句，每句 5 或 7 字）：只标出平仄，不检查格律。",
    "poems.tones_ok": "全诗合乎格律。",
    "poems.check_bits": "模型读这首诗：{bpc:.2f} 比特/字。",
    "poems.broken_place": "第 {line} 句第 {place} 字应为{tone}",
    "poems.end_groups": "末字的韵部",
    "poems.expected": "p = {prob:.4f}；模型预期的是：{expected}",
    "compare.seed_used": "种子 **{seed}**",
    "compare.score": "验证集 {bpc:.3f} 比特/字符",
    "compare.progress": "{chars:,} 个新字符",
    "compare.done": "完成",
    "compare.writing": "正在写…",
}

TABLES = {ENGLISH: EN, CHINESE: ZH}
i18n = gr.I18n(**TABLES)  # for launch(i18n=...); it holds these same dicts, so keys added later reach the page


def add_texts(texts: dict[str, dict[str, str]]) -> None:
    """Add keys kept next to the code that shows them (the About page's long texts):
    ``{key: {"en": ..., "zh-CN": ...}}``, every key in both languages and new to the tables."""
    for key, by_language in texts.items():
        if set(by_language) != set(LANGUAGES):
            raise ValueError(f"{key!r} needs exactly the languages {LANGUAGES}, got {sorted(by_language)}")
        if any(key in table for table in TABLES.values()):
            raise ValueError(f"{key!r} is already in the tables")
    for key, by_language in texts.items():
        for language, text in by_language.items():
            TABLES[language][key] = text


def page_text(key: str, **fields) -> I18nData:
    """``i18n(key)`` with the template filled in, in every language, under a key of its own (the key
    plus a digest of the fields), for static text built from data when the page is built. A field
    whose value is a dict gives one value per language (``{"en": ..., "zh-CN": ...}``)."""
    if not fields:
        return i18n(key)
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]
    filled = f"{key}#{digest}"
    for language, table in TABLES.items():
        values = {name: value[language] if isinstance(value, dict) else value for name, value in fields.items()}
        table.setdefault(filled, table[key].format(**values))
    return i18n(filled)


def server_text(key: str, language: str, **fields) -> str:
    """The text of ``key`` in ``language`` (English for any other), its template filled in."""
    template = TABLES.get(language, EN)[key]
    return template.format(**fields) if fields else template


# ---- errors ---------------------------------------------------------------------------------------
# The Chinese of every sentence a user error says (rnn_demo.serving.errors.UserError), keyed by its
# English template; the fields are the same (tests/test_i18n.py checks both for every template raised).
ERRORS_ZH: dict[str, str] = {
    # arguments (rnn_demo.serving.requests)
    "{name} must be a finite number, got {value!r}.": "{name} 必须是有限的数，收到的是 {value!r}。",
    "{name} must be a whole number, got {value!r}.": "{name} 必须是整数，收到的是 {value!r}。",
    "{name} must be text, got {type}.": "{name} 必须是文本，收到的是 {type}。",
    "The {name} is {length:,} characters long; the limit is {limit:,}.": "{name} 长 {length:,} 个字符，上限是 {limit:,}。",
    "{name} must be valid Unicode text: it holds a lone surrogate (U+{code:04X}) at position {position}.": "{name} 必须是有效的 Unicode 文本：第 {position} 位有一个落单的代理项（U+{code:04X}）。",
    "cell must be text (one of {cells}), got {cell!r}.": "单元类型必须是文本（{cells} 之一），收到的是 {cell!r}。",
    "cell must be one of {cells}, got {cell!r}.": "单元类型必须是 {cells} 之一，收到的是 {cell!r}。",
    "seed must be {random_seed} (random) or between 0 and {max_seed}, got {seed}.": "随机种子必须是 {random_seed}（随机）或 0 到 {max_seed} 之间的数，收到的是 {seed}。",
    "temperature must be between 0 (greedy) and {max_temperature}, got {temperature}.": "温度必须在 0（贪心）到 {max_temperature} 之间，收到的是 {temperature}。",
    "max_new_chars must be between 1 and {limit:,}, got {value:,}.": "新字符数必须在 1 到 {limit:,} 之间，收到的是 {value:,}。",
    "top_k must be 0 (off) or more, got {top_k}.": "top_k 必须是 0（关闭）或更大的数，收到的是 {top_k}。",
    "top_p must be above 0 and at most 1 (1 = off), got {top_p}.": "top_p 必须大于 0 且不超过 1（1 = 关闭），收到的是 {top_p}。",
    "The text is empty; give the model something to read.": "文本是空的：请给模型一些可读的内容。",
    "layer must be {allowed} for {model} (it has {layers}), got {layer}.": "{model} 的层号必须是 {allowed}（它有 {layers} 层），收到的是 {layer}。",
    "top_k must be between 1 and {most}, got {top_k}.": "top_k 必须在 1 到 {most} 之间，收到的是 {top_k}。",
    # the models (rnn_demo.serving.zoo)
    "No {cell} model with hidden size {hidden_size!r}; available: {sizes}.": "没有隐藏维度为 {hidden_size!r} 的 {cell} 模型；可用的有：{sizes}。",
    "No models are available ({problems}).": "没有可用的模型（{problems}）。",
    "Unknown cell {cell!r}; available: {cells}.": "未知的单元类型 {cell!r}；可用的有：{cells}。",
    # generation (rnn_demo.serving.streaming)
    "The model {model} could not be loaded: {error}": "模型 {model} 无法加载：{error}",
    "The generation could not start: {error}": "生成无法开始：{error}",
    "The generation failed: {error}": "生成失败：{error}",
    # the views (rnn_demo.serving.views)
    "{model} knows none of the text's characters (it does not know {unknown}) and needs at least 2, one to predict "
    "the next from.": "{model} 一个字符都不认识（它不认识 {unknown}），至少需要认识 2 个：用一个预测下一个。",
    "{model} knows only one of the text's characters (it does not know {unknown}) and needs at least 2, one to "
    "predict the next from.": "{model} 只认识文本中的一个字符（它不认识 {unknown}），至少需要认识 2 个：用一个预测下一个。",
    "The text has one character; give at least 2, one to predict the next from.": "文本只有一个字符：请至少给 2 个，用一个预测下一个。",
    "No models are available to score the text.": "没有可以为这段文本打分的模型。",
    "No model knows 2 characters of the text, so none can predict one from the other.": "没有哪个模型认识文本中的 2 个字符，所以都无法用一个预测另一个。",
    "{model} knows none of the characters of the text.": "{model} 不认识这段文本中的任何字符。",
    # poems (rnn_demo.serving.poems)
    "No poem model is available on this server.": "这个服务器上没有写诗的模型。",
    "{name} must be {length} characters long, got {got} ({value!r}).": "{name} 必须是 {length} 个字，收到的是 {got} 个（{value!r}）。",
    "form must be one of {names}, got {form!r}.": "体裁必须是 {names} 之一，收到的是 {form!r}。",
    "The first line must begin with the acrostic's first character {char!r}.": "首句必须以藏头的第一个字 {char!r} 开头。",
    "{name} must be Chinese characters only; {char!r} is not one.": "{name} 只能是汉字；{char!r} 不是汉字。",
    "{name}: the poem model does not know the character {char!r}.": "{name}：诗模型不认识 {char!r} 这个字。",
    "{name} must be true or false, got {value!r}.": "{name} 必须是 true 或 false，收到的是 {value!r}。",
    "The poem is empty: paste a poem, one line a row or in couplets.": "诗是空的：请粘贴一首诗，每行一句或每行一联。",
    "The poem model does not know {char!r}.": "诗模型不认识 {char!r}。",
    "A poem holds Chinese characters and punctuation only; {char!r} is not one.": "诗里只能有汉字和标点；{char!r} 不是。",
    # training (rnn_demo.serving.training_jobs)
    "{name} must be a whole number, got {value!r}": "{name} 必须是整数，收到的是 {value!r}",
    "{name} must be between {low} and {high}, got {value}": "{name} 必须在 {low} 到 {high} 之间，收到的是 {value}",
    "text must be a string, got {type}": "文本必须是字符串，收到的是 {type}",
    "The text is empty: paste some text, upload a .txt file, or train on tiny shakespeare.":
        "文本是空的：请粘贴一些文本、上传一个 .txt 文件，或者用莎士比亚小语料训练。",
    "The text is {mb:.1f} MB; at most {limit_mb:g} MB can be trained on here.": "文本有 {mb:.1f} MB；这里最多只能训练 {limit_mb:g} MB。",
    "The text has {length:,} characters; at least {minimum:,} are needed, so that 5% of it can be set aside to "
    "measure the model on.": "文本有 {length:,} 个字符；至少需要 {minimum:,} 个，才能留出 5% 用来评估模型。",
    "The text holds half of a UTF-16 surrogate pair, which is not a character.":
        "文本中有半个 UTF-16 代理对，它不是一个字符。",
    "The text has {distinct:,} distinct characters; at most {limit:,} are allowed.":
        "文本有 {distinct:,} 种不同的字符；最多允许 {limit:,} 种。",
    "Unknown cell {cell!r}; choose one of {cells}": "未知的单元类型 {cell!r}；请从 {cells} 中选择",
    "seconds must be a number, got {seconds!r}": "训练时间必须是数，收到的是 {seconds!r}",
    "seconds must be between {low:g} and {high:g}, got {seconds:g}": "训练时间必须在 {low:g} 到 {high:g} 秒之间，收到的是 {seconds:g}",
    "{file} is {mb:.1f} MB; at most {limit_mb:g} MB can be trained on here.": "{file} 有 {mb:.1f} MB；这里最多只能训练 {limit_mb:g} MB。",
    "Could not read the uploaded file {file}: {reason}": "无法读取上传的文件 {file}：{reason}",
    "{file} is not a text file (it holds NUL bytes): upload UTF-8 text.": "{file} 不是文本文件（其中有 NUL 字节）：请上传 UTF-8 文本。",
    "{file} is not UTF-8 text (byte {position:,} cannot be decoded).": "{file} 不是 UTF-8 文本（第 {position:,} 个字节无法解码）。",
    "model_id must be the id a training returned (a string)": "model_id 必须是训练返回的 id（一个字符串）",
    "You have no model of your own yet: train one in the Train tab first.": "你还没有自己的模型：请先在“训练”页训练一个。",
    "No trained model has the id {model_id!r}: it never existed or has expired (models are kept {minutes:g} minutes "
    "after their last use, {most} per visitor). Train it again.":
        "没有 id 为 {model_id!r} 的训练模型：它从未存在或已过期（模型在最后一次使用后保留 {minutes:g} 分钟，每位访客最多 {most} 个）。请重新训练。",
    "Stopped at step {step}, before the first evaluation (every {eval_every} steps): no model was kept.":
        "在第 {step} 步停止，早于第一次评估（每 {eval_every} 步一次）：没有保留模型。",
    "The training failed: {reason}": "训练失败：{reason}",
    "The training could not start: {error}.": "训练无法开始：{error}。",
    "Stopped while waiting for its turn: nothing was trained.": "在排队时停止：没有进行训练。",
    "The server keeps {most} trained models and holds that many of other visitors': try again in about "
    "{minutes:.0f} min, when one expires.":
        "服务器最多保留 {most} 个训练模型，现在都是其他访客的：请大约 {minutes:.0f} 分钟后、有模型过期时再试。",
    # the line of trainings (rnn_demo.serving.training_line)
    "You already have a training running or waiting: let it end, or stop it, before you start another.":
        "你已有一个训练正在进行或排队：请等它结束或停止它，再开始新的训练。",
    "The server is busy: {running} running and {waiting} waiting, the most it takes. Try again in about {seconds:.0f} s.":
        "服务器正忙：{running} 个训练正在进行，{waiting} 个在排队，已达上限。请大约 {seconds:.0f} 秒后再试。",
    # the Train tab (rnn_demo.ui.train_tab)
    "Unknown text source {source!r}; choose {sources}": "未知的文本来源 {source!r}；请选择 {sources}",
    "Choose a .txt file to upload first.": "请先选择要上传的 .txt 文件。",
}


def error_text(error: Exception, language: str = ENGLISH) -> str:
    """What the page says of ``error``: its sentence in ``language`` when it is a user error whose
    template has a translation, else its English sentence."""
    template = getattr(error, "template", None)
    if language == CHINESE and template in ERRORS_ZH:
        return ERRORS_ZH[template].format(**error.fields)
    return str(error)


def translated(value, language: str = ENGLISH) -> str:
    """What the browser shows for a label or value set on the page: ``i18n("key")`` (an object, or
    the string Gradio makes of it) resolved in ``language``; other text as it is."""
    if isinstance(value, I18nData):
        return server_text(value.key, language)
    text = str(value)
    marker = re.search(r"__i18n__(\{.*?\})", text)
    if marker is None:
        return text
    key = json.loads(marker.group(1))["key"]
    return text[: marker.start()] + server_text(key, language) + text[marker.end() :]


def language_of(accept_language: str | None) -> str:
    """The language to answer in for an ``Accept-Language`` header: zh-CN when its most preferred
    language is Simplified Chinese (zh, zh-CN, zh-Hans, zh-SG, ...), else English, as the page does
    (the browser's first language picks the page's table; one we have no table for falls back to
    English). Tags are ranked by their q-values (1 when not given, q=0 means "not this one"); ties
    keep the header's order."""
    ranked = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip().lower().replace("_", "-")
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    if not ranked:
        return ENGLISH
    _, _, first = min(ranked)
    return CHINESE if _SIMPLIFIED.match(first) else ENGLISH


# The page's language as the browser shows it: Gradio sets <html lang> to its locale (the browser's,
# or the one chosen in the footer's Settings), and this script, run when the page loads
# (launch(js=...)), copies it into a cookie each time it changes, so every request says it. Where
# the cookie is not sent (a page embedded on another site, whose cookies the browser blocks),
# Accept-Language stands in, which is the browser's language.
LANGUAGE_COOKIE = "rnn_demo_language"
POEMS_TAB_ID = "poems-tab"  # the 诗 tab's elem_id; Gradio names its button "<elem_id>-button"
PAGE_LANGUAGE_JS = f"""() => {{
  const remember = () => {{
    document.cookie = "{LANGUAGE_COOKIE}=" + encodeURIComponent(document.documentElement.lang || "") + "; path=/; SameSite=Lax";
  }};
  remember();
  new MutationObserver(remember).observe(document.documentElement, {{attributes: true, attributeFilter: ["lang"]}});
  // A page shown in Simplified Chinese opens on the poems tab: Chinese output without hunting for it.
  const openPoems = () => {{
    const tab = document.getElementById("{POEMS_TAB_ID}-button");
    if (!tab) return false;
    if (document.documentElement.lang === "{CHINESE}") tab.click();
    return true;
  }};
  if (!openPoems()) {{
    const watcher = new MutationObserver(() => {{ if (openPoems()) watcher.disconnect(); }});
    watcher.observe(document.body, {{childList: true, subtree: true}});
  }}
}}"""


def request_language(request: gr.Request | None) -> str:
    """The language of the page that sent ``request``: the one it shows (its cookie, see
    PAGE_LANGUAGE_JS), else its Accept-Language header; English when there is no request (a
    direct call) or neither says."""
    headers = getattr(request, "headers", None)
    if headers is None:
        return ENGLISH
    # Starlette's headers (a served request) match names in any case; a gr.Request made from a dict does not.
    found = {str(name).lower(): value for name, value in dict(headers).items()}
    cookies = SimpleCookie()
    try:
        cookies.load(found.get("cookie") or "")
    except CookieError:
        pass  # a malformed Cookie header: as if it had no cookie
    shown = unquote(cookies[LANGUAGE_COOKIE].value) if LANGUAGE_COOKIE in cookies else ""
    return language_of(shown or found.get("accept-language"))
