//! A small reader for the Kconfig language: enough of it to explain why a symbol did
//! not land. It follows `source` includes from the tree's top `Kconfig` (expanding
//! `$(SRCARCH)`), reads `config`/`menuconfig` blocks (type, prompt, `depends on`,
//! `select`, `imply`, `default`), and carries the conditions of enclosing `if`, `menu`
//! and `choice` blocks into each definition. Expressions are evaluated in Kconfig's
//! tristate logic against a `.config`. It does not compute values itself: `olddefconfig`
//! does that; this reader only answers "what does this symbol depend on, and who selects it".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::dotconfig::DotConfig;

/// A Kconfig expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A symbol or a bare constant (`y`, `m`, `n`, `64`): decided at evaluation.
    Sym(String),
    /// A quoted constant.
    Str(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn text(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn go(e: &Expr, f: &mut std::fmt::Formatter<'_>, parent: u8) -> std::fmt::Result {
            // precedence: || 1, && 2, cmp 3, ! 4
            match e {
                Expr::Sym(s) => write!(f, "{s}"),
                Expr::Str(s) => write!(f, "\"{s}\""),
                Expr::Not(a) => {
                    write!(f, "!")?;
                    go(a, f, 4)
                }
                Expr::And(a, b) | Expr::Or(a, b) => {
                    let (p, op) = if matches!(e, Expr::And(..)) {
                        (2, " && ")
                    } else {
                        (1, " || ")
                    };
                    if parent > p {
                        write!(f, "(")?;
                    }
                    go(a, f, p)?;
                    write!(f, "{op}")?;
                    go(b, f, p)?;
                    if parent > p {
                        write!(f, ")")?;
                    }
                    Ok(())
                }
                Expr::Cmp(op, a, b) => {
                    if parent > 3 {
                        write!(f, "(")?;
                    }
                    go(a, f, 3)?;
                    write!(f, "{}", op.text())?;
                    go(b, f, 3)?;
                    if parent > 3 {
                        write!(f, ")")?;
                    }
                    Ok(())
                }
            }
        }
        go(self, f, 0)
    }
}

/// Symbol types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Unknown,
    Bool,
    Tristate,
    String,
    Int,
    Hex,
}

/// One `config`/`menuconfig` block (a symbol may be defined in several places).
#[derive(Debug, Clone)]
pub struct Def {
    /// Path relative to the tree root.
    pub file: String,
    pub line: usize,
    /// `Some(condition)` when the block has a prompt (user-settable); the condition is
    /// the prompt's `if` (None = always).
    pub prompt: Option<Option<Expr>>,
    /// The block's own `depends on` lines.
    pub depends: Vec<Expr>,
    /// Conditions inherited from enclosing `if`, `menu ... depends on` and `choice` blocks.
    pub inherited: Vec<Expr>,
    pub selects: Vec<(String, Option<Expr>)>,
    pub implies: Vec<(String, Option<Expr>)>,
    pub defaults: Vec<(Expr, Option<Expr>)>,
    /// Inside a `choice` block: exactly one member is y.
    pub in_choice: bool,
}

impl Def {
    /// Own and inherited dependencies together.
    pub fn all_deps(&self) -> Vec<&Expr> {
        self.inherited.iter().chain(self.depends.iter()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Symbol {
    pub name: String,
    pub kind: Kind,
    pub defs: Vec<Def>,
}

impl Symbol {
    /// True when at least one definition has a prompt: a user (or a fragment) can set it.
    pub fn user_settable(&self) -> bool {
        self.defs.iter().any(|d| d.prompt.is_some())
    }
}

/// Who selects (or implies) a symbol.
#[derive(Debug, Clone)]
pub struct Selector {
    pub by: String,
    pub cond: Option<Expr>,
    pub imply: bool,
}

/// Every symbol of a tree, with reverse `select`/`imply` edges.
#[derive(Debug, Default)]
pub struct KconfigDb {
    pub symbols: HashMap<String, Symbol>,
    pub selected_by: HashMap<String, Vec<Selector>>,
    /// Files that `source` named but that could not be read (kept for diagnostics).
    pub missing_files: Vec<String>,
    pub files_read: usize,
}

/// Variables the reader expands in `source` lines and expressions.
#[derive(Debug, Clone)]
pub struct Env {
    pub srcarch: String,
    pub arch: String,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            srcarch: "x86".into(),
            arch: "x86_64".into(),
        }
    }
}

impl KconfigDb {
    /// Read a whole tree from its top `Kconfig`.
    pub fn load(tree: &Path, env: &Env) -> std::io::Result<KconfigDb> {
        let top = tree.join("Kconfig");
        let text = std::fs::read_to_string(&top)?;
        let mut r = Reader {
            root: tree.to_path_buf(),
            env: env.clone(),
            db: KconfigDb::default(),
            stack: Vec::new(),
            depth: 0,
        };
        r.read_text(&text, "Kconfig", tree);
        let mut db = r.db;
        db.index();
        Ok(db)
    }

    /// Parse Kconfig text directly (unit tests; `source` lines resolve against `root`).
    pub fn from_text(text: &str, root: &Path) -> KconfigDb {
        let mut r = Reader {
            root: root.to_path_buf(),
            env: Env::default(),
            db: KconfigDb::default(),
            stack: Vec::new(),
            depth: 0,
        };
        r.read_text(text, "Kconfig", root);
        let mut db = r.db;
        db.index();
        db
    }

    fn index(&mut self) {
        let mut rev: HashMap<String, Vec<Selector>> = HashMap::new();
        for s in self.symbols.values() {
            for d in &s.defs {
                for (t, c) in &d.selects {
                    rev.entry(t.clone()).or_default().push(Selector {
                        by: s.name.clone(),
                        cond: c.clone(),
                        imply: false,
                    });
                }
                for (t, c) in &d.implies {
                    rev.entry(t.clone()).or_default().push(Selector {
                        by: s.name.clone(),
                        cond: c.clone(),
                        imply: true,
                    });
                }
            }
        }
        for v in rev.values_mut() {
            v.sort_by(|a, b| a.by.cmp(&b.by));
        }
        self.selected_by = rev;
    }

    pub fn get(&self, name: &str) -> Option<&Symbol> {
        self.symbols.get(name)
    }

    pub fn kind(&self, name: &str) -> Kind {
        self.symbols
            .get(name)
            .map(|s| s.kind)
            .unwrap_or(Kind::Unknown)
    }

    /// Tristate value (0 = n, 1 = m, 2 = y) of an expression under `cfg`.
    pub fn eval(&self, e: &Expr, cfg: &DotConfig) -> u8 {
        match e {
            Expr::Sym(s) => self.sym_tri(s, cfg),
            Expr::Str(s) => match s.as_str() {
                "y" => 2,
                "m" => 1,
                _ => 0,
            },
            Expr::Not(a) => 2 - self.eval(a, cfg),
            Expr::And(a, b) => self.eval(a, cfg).min(self.eval(b, cfg)),
            Expr::Or(a, b) => self.eval(a, cfg).max(self.eval(b, cfg)),
            Expr::Cmp(op, a, b) => {
                let (x, y) = (self.str_value(a, cfg), self.str_value(b, cfg));
                let ord = match (num(&x), num(&y)) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    _ => x.cmp(&y),
                };
                let t = match op {
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => ord.is_ne(),
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                };
                if t {
                    2
                } else {
                    0
                }
            }
        }
    }

    fn sym_tri(&self, s: &str, cfg: &DotConfig) -> u8 {
        match s {
            "y" => 2,
            "m" => 1,
            "n" => 0,
            MACRO => 2,
            _ => match self.kind(s) {
                Kind::Bool | Kind::Tristate | Kind::Unknown => tri(cfg.get(s)),
                _ => 0,
            },
        }
    }

    fn str_value(&self, e: &Expr, cfg: &DotConfig) -> String {
        match e {
            Expr::Str(s) => s.clone(),
            Expr::Sym(s) if matches!(s.as_str(), "y" | "m" | "n") => s.clone(),
            Expr::Sym(s) if self.symbols.contains_key(s) || cfg.mentions(s) => {
                let v = cfg.get(s);
                match self.kind(s) {
                    Kind::String | Kind::Int | Kind::Hex if v == "n" && !cfg.mentions(s) => {
                        String::new()
                    }
                    _ => v.trim_matches('"').to_string(),
                }
            }
            Expr::Sym(s) => s.clone(),
            other => tri_name(self.eval(other, cfg)).to_string(),
        }
    }

    /// The leaves that keep `e` below `want`: `["RUNTIME_TESTING_MENU=n"]`.
    pub fn unmet(&self, e: &Expr, want: u8, cfg: &DotConfig) -> Vec<String> {
        if self.eval(e, cfg) >= want {
            return Vec::new();
        }
        match e {
            Expr::Sym(s) if !matches!(s.as_str(), "y" | "m" | "n") => {
                vec![format!("{s}={}", cfg.get(s))]
            }
            Expr::Sym(s) => vec![format!("constant {s}")],
            Expr::Str(s) => vec![format!("constant \"{s}\"")],
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = self.unmet(a, want, cfg);
                for x in self.unmet(b, want, cfg) {
                    if !v.contains(&x) {
                        v.push(x);
                    }
                }
                v
            }
            Expr::Not(a) => vec![format!("{e} ({a} is {})", self.describe(a, cfg))],
            Expr::Cmp(..) => {
                let mut syms = Vec::new();
                collect_syms(e, &mut syms);
                let vals: Vec<String> = syms
                    .iter()
                    .filter(|s| self.symbols.contains_key(*s))
                    .map(|s| format!("{s}={}", cfg.get(s)))
                    .collect();
                vec![if vals.is_empty() {
                    format!("{e}")
                } else {
                    format!("{e} ({})", vals.join(", "))
                }]
            }
        }
    }

    fn describe(&self, e: &Expr, cfg: &DotConfig) -> String {
        match e {
            Expr::Sym(s) => cfg.get(s).to_string(),
            _ => tri_name(self.eval(e, cfg)).to_string(),
        }
    }
}

const MACRO: &str = "$(...)";

fn collect_syms(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Sym(s) => out.push(s.clone()),
        Expr::Str(_) => {}
        Expr::Not(a) => collect_syms(a, out),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
            collect_syms(a, out);
            collect_syms(b, out);
        }
    }
}

fn num(s: &str) -> Option<i128> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `y` → 2, `m` → 1, anything else → 0.
pub fn tri(v: &str) -> u8 {
    match v {
        "y" => 2,
        "m" => 1,
        _ => 0,
    }
}

pub fn tri_name(t: u8) -> &'static str {
    ["n", "m", "y"][t.min(2) as usize]
}

// ---- the reader ------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    If,
    Menu,
    Choice,
}

struct Frame {
    kind: FrameKind,
    deps: Vec<Expr>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cur {
    None,
    Config,
    Block, // menu or choice: `depends on` goes to the top frame
    Other, // comment, mainmenu
}

struct Reader {
    root: PathBuf,
    env: Env,
    db: KconfigDb,
    stack: Vec<Frame>,
    depth: usize,
}

/// Leading whitespace width (tabs to 8).
fn indent(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n = (n / 8 + 1) * 8,
            _ => break,
        }
    }
    n
}

impl Reader {
    fn expand(&self, s: &str) -> String {
        let mut out = String::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'(' {
                // find the matching paren
                let mut depth = 0;
                let mut j = i + 1;
                while j < b.len() {
                    if b[j] == b'(' {
                        depth += 1;
                    } else if b[j] == b')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    j += 1;
                }
                let name = &s[i + 2..j.min(s.len())];
                out.push_str(match name {
                    "SRCARCH" => &self.env.srcarch,
                    "ARCH" | "SUBARCH" => &self.env.arch,
                    _ => MACRO,
                });
                i = j + 1;
            } else if b[i] == b'$' && s[i + 1..].starts_with("SRCARCH") {
                out.push_str(&self.env.srcarch);
                i += 8;
            } else {
                let ch = s[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }

    fn read_file(&mut self, rel: &str, relative_to: &Path, optional: bool) {
        if self.depth > 64 {
            return;
        }
        let path = relative_to.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let shown = path
                    .strip_prefix(&self.root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| path.display().to_string());
                let dir = path.parent().unwrap_or(&self.root).to_path_buf();
                self.depth += 1;
                self.read_text(&text, &shown, &dir);
                self.depth -= 1;
            }
            Err(_) if optional => {}
            Err(_) => self.db.missing_files.push(rel.to_string()),
        }
    }

    fn inherited(&self) -> (Vec<Expr>, bool) {
        let deps = self
            .stack
            .iter()
            .flat_map(|f| f.deps.iter().cloned())
            .collect();
        let in_choice = self
            .stack
            .last()
            .is_some_and(|f| f.kind == FrameKind::Choice);
        (deps, in_choice)
    }

    fn read_text(&mut self, text: &str, file: &str, dir: &Path) {
        self.db.files_read += 1;
        // Join continuation lines, keeping the first line's number.
        let mut lines: Vec<(usize, String)> = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let (n, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
            if let Some(stripped) = raw.strip_suffix('\\') {
                acc.push_str(stripped);
                acc.push(' ');
                pending = Some((n, acc));
            } else {
                acc.push_str(raw);
                lines.push((n, acc));
            }
        }
        if let Some(p) = pending {
            lines.push(p);
        }

        let mut cur = Cur::None;
        let mut cur_sym: Option<(String, usize)> = None; // (name, def index)
        let mut help_indent: Option<usize> = None; // Some(0) = waiting for the first help line
        let mut in_help = false;
        for (lineno, line) in lines {
            if in_help {
                if line.trim().is_empty() {
                    continue;
                }
                let ind = indent(&line);
                match help_indent {
                    Some(0) => {
                        help_indent = Some(ind.max(1));
                        continue;
                    }
                    Some(h) if ind >= h => continue,
                    _ => {
                        in_help = false;
                        help_indent = None;
                    }
                }
            }
            let toks = tokenize(&self.expand(&line));
            if toks.is_empty() {
                continue;
            }
            let kw = toks[0].as_word().unwrap_or("");
            // Variable assignments (scripts/Kconfig.include): NAME := value
            if toks.len() >= 2
                && matches!(toks[1].as_word(), Some(":=" | "+=" | "="))
                && !kw.is_empty()
                && cur == Cur::None
            {
                continue;
            }
            let rest = &toks[1..];
            match kw {
                "config" | "menuconfig" => {
                    let Some(name) = rest.first().and_then(Tok::as_word) else {
                        continue;
                    };
                    let (inherited, in_choice) = self.inherited();
                    let sym = self
                        .db
                        .symbols
                        .entry(name.to_string())
                        .or_insert_with(|| Symbol {
                            name: name.to_string(),
                            kind: Kind::Unknown,
                            defs: Vec::new(),
                        });
                    sym.defs.push(Def {
                        file: file.to_string(),
                        line: lineno,
                        prompt: None,
                        depends: Vec::new(),
                        inherited,
                        selects: Vec::new(),
                        implies: Vec::new(),
                        defaults: Vec::new(),
                        in_choice,
                    });
                    cur_sym = Some((name.to_string(), sym.defs.len() - 1));
                    cur = Cur::Config;
                }
                "choice" => {
                    self.stack.push(Frame {
                        kind: FrameKind::Choice,
                        deps: Vec::new(),
                    });
                    cur = Cur::Block;
                    cur_sym = None;
                }
                "endchoice" => {
                    if self
                        .stack
                        .last()
                        .is_some_and(|f| f.kind == FrameKind::Choice)
                    {
                        self.stack.pop();
                    }
                    cur = Cur::None;
                    cur_sym = None;
                }
                "menu" => {
                    self.stack.push(Frame {
                        kind: FrameKind::Menu,
                        deps: Vec::new(),
                    });
                    cur = Cur::Block;
                    cur_sym = None;
                }
                "endmenu" => {
                    if self.stack.last().is_some_and(|f| f.kind == FrameKind::Menu) {
                        self.stack.pop();
                    }
                    cur = Cur::None;
                    cur_sym = None;
                }
                "if" => {
                    let e = parse_expr(rest).unwrap_or(Expr::Sym(MACRO.into()));
                    self.stack.push(Frame {
                        kind: FrameKind::If,
                        deps: vec![e],
                    });
                    cur = Cur::None;
                    cur_sym = None;
                }
                "endif" => {
                    if self.stack.last().is_some_and(|f| f.kind == FrameKind::If) {
                        self.stack.pop();
                    }
                    cur = Cur::None;
                    cur_sym = None;
                }
                "comment" | "mainmenu" => {
                    cur = Cur::Other;
                    cur_sym = None;
                }
                "source" | "rsource" | "osource" | "orsource" => {
                    if let Some(Tok::Str(p)) = rest.first() {
                        if p.contains(MACRO) || p.contains('*') {
                            continue;
                        }
                        let base = if kw.starts_with('r') || kw.starts_with("or") {
                            dir.to_path_buf()
                        } else {
                            self.root.clone()
                        };
                        self.read_file(p, &base, kw.starts_with('o'));
                    }
                    cur = Cur::None;
                    cur_sym = None;
                }
                "help" | "---help---" => {
                    in_help = true;
                    help_indent = Some(0);
                }
                "depends" => {
                    let e = rest.get(1..).and_then(parse_expr);
                    if let Some(e) = e {
                        match cur {
                            Cur::Config => self.with_def(&cur_sym, |d| d.depends.push(e)),
                            Cur::Block => {
                                if let Some(f) = self.stack.last_mut() {
                                    f.deps.push(e)
                                }
                            }
                            _ => {}
                        }
                    }
                }
                // `visible if` on a menu hides prompts: treat it as a condition.
                "visible" if cur == Cur::Block => {
                    if let Some(e) = rest.get(1..).and_then(parse_expr) {
                        if let Some(f) = self.stack.last_mut() {
                            f.deps.push(e)
                        }
                    }
                }
                "bool" | "boolean" | "tristate" | "string" | "int" | "hex" | "def_bool"
                | "def_tristate" | "prompt" => {
                    if cur != Cur::Config {
                        continue;
                    }
                    let kind = match kw {
                        "bool" | "boolean" | "def_bool" => Some(Kind::Bool),
                        "tristate" | "def_tristate" => Some(Kind::Tristate),
                        "string" => Some(Kind::String),
                        "int" => Some(Kind::Int),
                        "hex" => Some(Kind::Hex),
                        _ => None,
                    };
                    if let (Some(k), Some((name, _))) = (kind, &cur_sym) {
                        if let Some(s) = self.db.symbols.get_mut(name) {
                            if s.kind == Kind::Unknown
                                || s.kind == Kind::Bool && k == Kind::Tristate
                            {
                                s.kind = k;
                            }
                        }
                    }
                    let (body, cond) = split_if(rest);
                    if kw.starts_with("def_") {
                        if let Some(e) = parse_expr(body) {
                            self.with_def(&cur_sym, |d| d.defaults.push((e, cond)));
                        }
                    } else if matches!(body.first(), Some(Tok::Str(_))) {
                        self.with_def(&cur_sym, |d| d.prompt = Some(cond));
                    }
                }
                "default" if cur == Cur::Config => {
                    let (body, cond) = split_if(rest);
                    if let Some(e) = parse_expr(body) {
                        self.with_def(&cur_sym, |d| d.defaults.push((e, cond)));
                    }
                }
                "select" | "imply" if cur == Cur::Config => {
                    let (body, cond) = split_if(rest);
                    if let Some(t) = body.first().and_then(Tok::as_word) {
                        let t = t.to_string();
                        if kw == "select" {
                            self.with_def(&cur_sym, |d| d.selects.push((t, cond)));
                        } else {
                            self.with_def(&cur_sym, |d| d.implies.push((t, cond)));
                        }
                    }
                }
                _ => {} // range, option, modules, transitional, ...
            }
        }
    }

    fn with_def(&mut self, cur: &Option<(String, usize)>, f: impl FnOnce(&mut Def)) {
        if let Some((name, i)) = cur {
            if let Some(d) = self
                .db
                .symbols
                .get_mut(name)
                .and_then(|s| s.defs.get_mut(*i))
            {
                f(d);
            }
        }
    }
}

// ---- tokens and expressions ------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
}

impl Tok {
    fn as_word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            Tok::Str(_) => None,
        }
    }
}

fn tokenize(line: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let cs: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            break;
        } else if c == '"' || c == '\'' {
            let q = c;
            let mut s = String::new();
            i += 1;
            while i < cs.len() && cs[i] != q {
                if cs[i] == '\\' && i + 1 < cs.len() {
                    i += 1;
                }
                s.push(cs[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if "()".contains(c) {
            out.push(Tok::Word(c.to_string()));
            i += 1;
        } else if "!=<>&|:+".contains(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            if ["&&", "||", "!=", "<=", ">=", ":=", "+="].contains(&two.as_str()) {
                out.push(Tok::Word(two));
                i += 2;
            } else {
                out.push(Tok::Word(c.to_string()));
                i += 1;
            }
        } else {
            let mut s = String::new();
            while i < cs.len() && !cs[i].is_whitespace() && !"()!=<>&|\"'#".contains(cs[i]) {
                s.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(s));
        }
    }
    out
}

/// Split `... if EXPR` into the body and the condition.
fn split_if(toks: &[Tok]) -> (&[Tok], Option<Expr>) {
    match toks.iter().position(|t| t.as_word() == Some("if")) {
        Some(i) => (&toks[..i], parse_expr(&toks[i + 1..])),
        None => (toks, None),
    }
}

/// Parse a Kconfig expression from tokens; None when it is malformed.
fn parse_expr(toks: &[Tok]) -> Option<Expr> {
    let mut p = ExprParser { toks, pos: 0 };
    let e = p.or()?;
    (p.pos == toks.len()).then_some(e)
}

/// Parse an expression from text (tests and callers outside the reader).
pub fn parse_expr_text(s: &str) -> Option<Expr> {
    parse_expr(&tokenize(s))
}

struct ExprParser<'a> {
    toks: &'a [Tok],
    pos: usize,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).and_then(Tok::as_word)
    }
    fn or(&mut self) -> Option<Expr> {
        let mut l = self.and()?;
        while self.peek() == Some("||") {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Some(l)
    }
    fn and(&mut self) -> Option<Expr> {
        let mut l = self.not()?;
        while self.peek() == Some("&&") {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Some(l)
    }
    fn not(&mut self) -> Option<Expr> {
        if self.peek() == Some("!") {
            self.pos += 1;
            return Some(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Option<Expr> {
        let l = self.atom()?;
        let op = match self.peek() {
            Some("=") => CmpOp::Eq,
            Some("!=") => CmpOp::Ne,
            Some("<") => CmpOp::Lt,
            Some("<=") => CmpOp::Le,
            Some(">") => CmpOp::Gt,
            Some(">=") => CmpOp::Ge,
            _ => return Some(l),
        };
        self.pos += 1;
        let r = self.atom()?;
        Some(Expr::Cmp(op, Box::new(l), Box::new(r)))
    }
    fn atom(&mut self) -> Option<Expr> {
        let t = self.toks.get(self.pos)?;
        self.pos += 1;
        match t {
            Tok::Str(s) => Some(Expr::Str(s.clone())),
            Tok::Word(w) if w == "(" => {
                let e = self.or()?;
                if self.peek() != Some(")") {
                    return None;
                }
                self.pos += 1;
                Some(e)
            }
            Tok::Word(w)
                if w.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || c == '_'
                        || c == '-'
                        || c == '.'
                        || c == '$'
                        || c == '/'
                }) =>
            {
                Some(Expr::Sym(w.clone()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KCONFIG: &str = r#"
mainmenu "Test $(SRCARCH)"

config MODULES
	bool "Enable loadable module support"

menuconfig RUNTIME_TESTING_MENU
	bool "Runtime Testing"
	def_bool y

if RUNTIME_TESTING_MENU

config TEST_BPF
	tristate "Test BPF filter functionality"
	depends on m && NET
	help
	  This builds the "test_bpf" module.
	  depends on NOT_REAL   (help text is not parsed)

	  More help after a blank line.

endif # RUNTIME_TESTING_MENU

config NET
	bool "Networking support"

menu "BPF"
	depends on NET

config BPF_JIT
	bool "Enable BPF JIT" if !ARCH_WANT_JIT_ALWAYS_ON
	depends on HAVE_EBPF_JIT || HAVE_CBPF_JIT
	select BPF_HELPER if NET

endmenu

config BPF_HELPER
	bool

config HAVE_EBPF_JIT
	bool

config ARCH_WANT_JIT_ALWAYS_ON
	def_bool n

config NAME
	string "name"
	default "$(ARCH)"

config LONG
	bool "Long" if NET && \
	   MODULES
	select NET

choice
	prompt "Compression"
	depends on NET
config KERNEL_GZIP
	bool "gzip"
config KERNEL_XZ
	bool "xz"
endchoice

config NR
	int "nr"
	range 1 4

config X86_ONLY
	bool "x"
	depends on "$(SRCARCH)" = "x86" && NR >= 2
"#;

    fn db() -> KconfigDb {
        KconfigDb::from_text(KCONFIG, Path::new("/nonexistent"))
    }

    #[test]
    fn reads_blocks_types_prompts_and_help() {
        let db = db();
        let t = db.get("TEST_BPF").unwrap();
        assert_eq!(t.kind, Kind::Tristate);
        assert!(t.user_settable());
        let d = &t.defs[0];
        assert_eq!(
            d.depends.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["m && NET"]
        );
        assert_eq!(
            d.inherited
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>(),
            ["RUNTIME_TESTING_MENU"]
        );
        assert!(db.get("NOT_REAL").is_none(), "help text must not be parsed");
        assert_eq!(d.line, 13);
        assert!(!db.get("BPF_HELPER").unwrap().user_settable());
        let j = &db.get("BPF_JIT").unwrap().defs[0];
        assert_eq!(
            j.inherited
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>(),
            ["NET"],
            "menu depends are inherited"
        );
        assert_eq!(
            j.prompt.as_ref().unwrap().as_ref().unwrap().to_string(),
            "!ARCH_WANT_JIT_ALWAYS_ON"
        );
        let sel = &db.selected_by["BPF_HELPER"];
        assert_eq!(sel[0].by, "BPF_JIT");
        assert_eq!(sel[0].cond.as_ref().unwrap().to_string(), "NET");
        assert!(
            db.get("LONG").unwrap().user_settable(),
            "continued prompt line"
        );
        assert_eq!(db.selected_by["NET"][0].by, "LONG");
        assert!(db.get("KERNEL_XZ").unwrap().defs[0].in_choice);
        assert_eq!(
            db.get("KERNEL_XZ").unwrap().defs[0].inherited[0].to_string(),
            "NET"
        );
        assert_eq!(db.kind("NR"), Kind::Int);
        assert_eq!(
            db.get("NAME").unwrap().defs[0].defaults[0].0,
            Expr::Str("x86_64".into())
        );
    }

    #[test]
    fn evaluates_tristate_logic_and_names_unmet_symbols() {
        let db = db();
        let cfg = DotConfig::parse(
            "CONFIG_NET=y\nCONFIG_NR=3\n# CONFIG_RUNTIME_TESTING_MENU is not set\n",
        );
        let d = &db.get("TEST_BPF").unwrap().defs[0];
        let all = d.all_deps();
        assert_eq!(db.eval(all[0], &cfg), 0);
        assert_eq!(db.unmet(all[0], 1, &cfg), ["RUNTIME_TESTING_MENU=n"]);
        assert_eq!(db.eval(all[1], &cfg), 1, "m && NET=y is m");
        let x = db.get("X86_ONLY").unwrap().defs[0].depends[0].clone();
        assert_eq!(db.eval(&x, &cfg), 2, "{x}");
        let small = DotConfig::parse("CONFIG_NR=1\n");
        assert_eq!(db.unmet(&x, 2, &small), ["NR>=2 (NR=1)"]);
        let e = parse_expr_text("!(A || B) && C").unwrap();
        assert_eq!(e.to_string(), "!(A || B) && C");
        let c = DotConfig::parse("CONFIG_A=y\nCONFIG_C=y\n");
        assert_eq!(db.eval(&e, &c), 0);
        assert_eq!(db.unmet(&e, 2, &c), ["!(A || B) (A || B is y)"]);
        let jit = db.get("BPF_JIT").unwrap().defs[0].depends[0].clone();
        assert_eq!(
            db.unmet(&jit, 2, &c),
            ["HAVE_EBPF_JIT=n", "HAVE_CBPF_JIT=n"]
        );
    }

    #[test]
    fn follows_source_lines_relative_to_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("arch/x86")).unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("Kconfig"), "source \"arch/$(SRCARCH)/Kconfig\"\nif NET\nsource \"net/Kconfig\"\nendif\nosource \"nope/Kconfig\"\nsource \"missing/Kconfig\"\n").unwrap();
        std::fs::write(
            dir.path().join("arch/x86/Kconfig"),
            "config X86\n\tdef_bool y\n\tselect HAVE_EBPF_JIT\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("net/Kconfig"),
            "config NET_THING\n\ttristate \"thing\"\n",
        )
        .unwrap();
        let db = KconfigDb::load(dir.path(), &Env::default()).unwrap();
        assert_eq!(db.files_read, 3);
        assert_eq!(db.missing_files, ["missing/Kconfig"]);
        let d = &db.get("NET_THING").unwrap().defs[0];
        assert_eq!(d.file, "net/Kconfig");
        assert_eq!(
            d.inherited[0].to_string(),
            "NET",
            "if blocks reach into sourced files"
        );
        assert_eq!(db.selected_by["HAVE_EBPF_JIT"][0].by, "X86");
    }
}
