using System.Globalization;
using System.Text;

namespace Xmtf.Evaluation;

/// <summary>
/// The subset of Jinja2 that promptsource templates use, rendering exactly as Jinja2 3.1 with its defaults
/// (no trim_blocks / lstrip_blocks, one trailing newline dropped): <c>{{ }}</c> with filters, <c>{% if/elif/else %}</c>,
/// <c>{% for %}</c>, <c>{% set %}</c>, <c>{# #}</c>, <c>-</c> whitespace control, Python-like values and operators.
/// Values are <c>string</c>, <c>long</c>, <c>double</c>, <c>bool</c>, <c>null</c> (None), lists and dictionaries.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> _body;

    JinjaTemplate(List<Node> body) => _body = body;

    /// <summary>Parses a template; a syntax error throws <see cref="XmtfException"/>.</summary>
    public static JinjaTemplate Parse(string source) => new(new Parser(Lex(source)).Template());

    /// <summary>Renders with the given variables (missing ones are Jinja's undefined: empty when printed).</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var sb = new StringBuilder();
        Exec(_body, new Dictionary<string, object?>(variables), sb);
        return sb.ToString();
    }

    // ---- lexer ----

    enum K { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, Const, Op, Eof }
    readonly record struct Tok(K Kind, string Text, object? Value = null);

    static List<Tok> Lex(string source)
    {
        // Jinja normalizes newlines and, without keep_trailing_newline, drops one final newline.
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        var toks = new List<Tok>();
        int pos = 0;
        bool stripNext = false;
        while (pos < source.Length)
        {
            int open = source.IndexOf('{', pos);
            while (open >= 0 && (open + 1 >= source.Length || source[open + 1] is not ('{' or '%' or '#'))) open = source.IndexOf('{', open + 1);
            var data = source[pos..(open < 0 ? source.Length : open)];
            bool stripBefore = open >= 0 && open + 2 < source.Length && source[open + 2] == '-';
            if (stripNext) data = data.TrimStart();
            if (stripBefore) data = data.TrimEnd();
            if (data.Length > 0) toks.Add(new(K.Data, data));
            if (open < 0) break;
            pos = open + (stripBefore ? 3 : 2);
            char kind = source[open + 1];
            if (kind == '#')
            {
                int close = source.IndexOf("#}", pos, StringComparison.Ordinal);
                if (close < 0) throw new XmtfException("template: unclosed comment");
                stripNext = source[close - 1] == '-';
                pos = close + 2;
                continue;
            }
            toks.Add(new(kind == '{' ? K.VarBegin : K.BlockBegin, ""));
            string end = kind == '{' ? "}}" : "%}";
            while (true)
            {
                while (pos < source.Length && char.IsWhiteSpace(source[pos])) pos++;
                if (pos >= source.Length) throw new XmtfException($"template: missing '{end}'");
                if (string.CompareOrdinal(source, pos, end, 0, 2) == 0 || string.CompareOrdinal(source, pos, "-" + end, 0, 3) == 0)
                {
                    stripNext = source[pos] == '-';
                    pos += stripNext ? 3 : 2;
                    toks.Add(new(kind == '{' ? K.VarEnd : K.BlockEnd, ""));
                    break;
                }
                toks.Add(LexToken(source, ref pos));
            }
        }
        toks.Add(new(K.Eof, ""));
        return toks;
    }

    static readonly string[] Ops = ["==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", ".", ",", ":", "|"];

    static Tok LexToken(string s, ref int pos)
    {
        char c = s[pos];
        int start = pos;
        if (c is '"' or '\'')
        {
            var sb = new StringBuilder();
            for (pos++; pos < s.Length && s[pos] != c; pos++)
            {
                if (s[pos] != '\\' || pos + 1 >= s.Length) { sb.Append(s[pos]); continue; }
                char e = s[++pos];
                sb.Append(e switch { 'n' => "\n", 't' => "\t", 'r' => "\r", '\\' or '\'' or '"' => e.ToString(), _ => "\\" + e });
            }
            if (pos >= s.Length) throw new XmtfException("template: unterminated string");
            pos++;
            return new(K.Const, s[start..pos], sb.ToString());
        }
        if (char.IsAsciiDigit(c))
        {
            while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            bool isFloat = pos + 1 < s.Length && s[pos] == '.' && char.IsAsciiDigit(s[pos + 1]);
            if (isFloat) for (pos++; pos < s.Length && char.IsAsciiDigit(s[pos]); pos++) { }
            var text = s[start..pos];
            return new(K.Const, text, isFloat ? double.Parse(text, CultureInfo.InvariantCulture) : (object)long.Parse(text, CultureInfo.InvariantCulture));
        }
        if (char.IsLetter(c) || c == '_')
        {
            while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
            return new(K.Name, s[start..pos]);
        }
        foreach (var op in Ops)
            if (string.CompareOrdinal(s, pos, op, 0, op.Length) == 0) { pos += op.Length; return new(K.Op, op); }
        throw new XmtfException($"template: unexpected character '{c}'");
    }

    // ---- syntax tree ----

    abstract record Node;
    sealed record Text(string Value) : Node;
    sealed record Output(Expr Value) : Node;
    sealed record If(List<(Expr Cond, List<Node> Body)> Branches, List<Node> Else) : Node;
    sealed record For(string[] Targets, Expr Items, List<Node> Body, List<Node> Else) : Node;
    sealed record Set(string Name, Expr Value) : Node;

    abstract record Expr;
    sealed record Const(object? Value) : Expr;
    sealed record Name(string Id) : Expr;
    sealed record ListExpr(Expr[] Items) : Expr;
    sealed record Unary(string Op, Expr Operand) : Expr;
    sealed record Binary(string Op, Expr Left, Expr Right) : Expr;
    sealed record Item(Expr Target, Expr Index) : Expr;
    sealed record Slice(Expr Target, Expr? Start, Expr? Stop) : Expr;
    sealed record Attr(Expr Target, string Name) : Expr;
    sealed record Call(Expr Callee, Expr[] Args) : Expr;
    sealed record Filter(Expr Value, string Name, Expr[] Args) : Expr;

    sealed class Parser(List<Tok> toks)
    {
        int _i;
        Tok Peek => toks[_i];
        Tok Next() => toks[_i++];
        bool IsOp(string op) => Peek.Kind == K.Op && Peek.Text == op;
        bool IsName(string name) => Peek.Kind == K.Name && Peek.Text == name;
        bool Accept(string op) { if (!IsOp(op) && !IsName(op)) return false; _i++; return true; }
        void Expect(string op) { if (!Accept(op)) throw Error($"expected '{op}'"); }
        void Expect(K kind) { if (Next().Kind != kind) throw Error($"expected {kind}"); }
        XmtfException Error(string what) => new($"template: {what} near '{Peek.Text}'");

        public List<Node> Template()
        {
            var (body, end) = Body();
            if (end is not null) throw Error($"unexpected '{{% {end} %}}'");
            return body;
        }

        /// <summary>Nodes up to an unknown block tag (returned, with the parser just after its name) or the end.</summary>
        (List<Node> Body, string? EndTag) Body()
        {
            var body = new List<Node>();
            while (true)
            {
                var t = Next();
                switch (t.Kind)
                {
                    case K.Eof: _i--; return (body, null);
                    case K.Data: body.Add(new Text(t.Text)); break;
                    case K.VarBegin: body.Add(new Output(Expression())); Expect(K.VarEnd); break;
                    case K.BlockBegin:
                        var tag = Next();
                        if (tag.Kind != K.Name) throw Error("expected a tag name");
                        switch (tag.Text)
                        {
                            case "if": body.Add(IfTag()); break;
                            case "for": body.Add(ForTag()); break;
                            case "set":
                                var name = Next().Text;
                                Expect("=");
                                body.Add(new Set(name, Expression()));
                                Expect(K.BlockEnd);
                                break;
                            default: return (body, tag.Text);
                        }
                        break;
                    default: throw Error("unexpected token");
                }
            }
        }

        List<Node> Until(params string[] tags)
        {
            var (body, end) = Body();
            if (end is null || !tags.Contains(end)) throw Error($"expected one of {string.Join(", ", tags)}");
            _i--;
            return body;
        }

        Node IfTag()
        {
            var branches = new List<(Expr, List<Node>)>();
            var elseBody = new List<Node>();
            var cond = Expression();
            while (true)
            {
                Expect(K.BlockEnd);
                var body = Until("elif", "else", "endif");
                branches.Add((cond, body));
                var tag = Next().Text;
                if (tag == "elif") { cond = Expression(); continue; }
                if (tag == "else") { Expect(K.BlockEnd); elseBody = Until("endif"); Next(); }
                Expect(K.BlockEnd);
                return new If(branches, elseBody);
            }
        }

        Node ForTag()
        {
            var targets = new List<string> { Next().Text };
            while (Accept(",")) targets.Add(Next().Text);
            Expect("in");
            var items = Expression();
            Expect(K.BlockEnd);
            var body = Until("else", "endfor");
            var elseBody = new List<Node>();
            if (Next().Text == "else") { Expect(K.BlockEnd); elseBody = Until("endfor"); Next(); }
            Expect(K.BlockEnd);
            return new For([.. targets], items, body, elseBody);
        }

        // Precedence as in Jinja2's parser: or, and, not, comparisons, + -, ~, * / // %, **, unary, postfix, filters.
        public Expr Expression() => Or();
        Expr Or() { var e = And(); while (Accept("or")) e = new Binary("or", e, And()); return e; }
        Expr And() { var e = Not(); while (Accept("and")) e = new Binary("and", e, Not()); return e; }
        Expr Not() => Accept("not") ? new Unary("not", Not()) : Compare();

        Expr Compare()
        {
            var e = AddSub();
            while (true)
            {
                if (Peek.Kind == K.Op && Peek.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") e = new Binary(Next().Text, e, AddSub());
                else if (Accept("in")) e = new Binary("in", e, AddSub());
                else if (IsName("not") && toks[_i + 1].Text == "in") { _i += 2; e = new Unary("not", new Binary("in", e, AddSub())); }
                else return e;
            }
        }

        Expr AddSub() { var e = Concat(); while (IsOp("+") || IsOp("-")) e = new Binary(Next().Text, e, Concat()); return e; }
        Expr Concat() { var e = MulDiv(); while (Accept("~")) e = new Binary("~", e, MulDiv()); return e; }
        Expr MulDiv() { var e = Pow(); while (Peek.Kind == K.Op && Peek.Text is "*" or "/" or "//" or "%") e = new Binary(Next().Text, e, Pow()); return e; }
        Expr Pow() { var e = UnaryExpr(true); while (Accept("**")) e = new Binary("**", e, UnaryExpr(true)); return e; }

        Expr UnaryExpr(bool withFilter)
        {
            Expr e = IsOp("-") || IsOp("+") ? new Unary(Next().Text, UnaryExpr(false)) : Postfix(Primary());
            while (withFilter && Accept("|"))
            {
                var name = Next().Text;
                e = new Filter(e, name, IsOp("(") ? Args() : []);
            }
            return e;
        }

        Expr Primary()
        {
            var t = Next();
            if (t.Kind == K.Const)
            {
                if (t.Value is not string s) return new Const(t.Value);
                while (Peek.Kind == K.Const && Peek.Value is string more) { s += more; _i++; } // "a" "b" is one string
                return new Const(s);
            }
            if (t.Kind == K.Name)
                return t.Text switch
                {
                    "true" or "True" => new Const(true),
                    "false" or "False" => new Const(false),
                    "none" or "None" => new Const(null),
                    _ => new Name(t.Text),
                };
            if (t.Text == "(") { var e = Expression(); Expect(")"); return e; }
            if (t.Text == "[")
            {
                var items = new List<Expr>();
                while (!Accept("]")) { if (items.Count > 0) Expect(","); if (Accept("]")) break; items.Add(Expression()); }
                return new ListExpr([.. items]);
            }
            _i--;
            throw Error("expected an expression");
        }

        Expr Postfix(Expr e)
        {
            while (true)
            {
                if (Accept(".")) e = new Attr(e, Next().Text);
                else if (IsOp("(")) e = new Call(e, Args());
                else if (Accept("["))
                {
                    Expr? start = IsOp(":") ? null : Expression();
                    if (Accept(":"))
                    {
                        Expr? stop = IsOp("]") ? null : Expression();
                        e = new Slice(e, start, stop);
                    }
                    else e = new Item(e, start!);
                    Expect("]");
                }
                else return e;
            }
        }

        Expr[] Args()
        {
            Expect("(");
            var args = new List<Expr>();
            while (!Accept(")")) { if (args.Count > 0) Expect(","); args.Add(Expression()); }
            return [.. args];
        }
    }

    // ---- evaluation ----

    /// <summary>Jinja's default undefined: prints as empty, is falsy.</summary>
    sealed class Undefined { public static readonly Undefined Value = new(); }

    static void Exec(List<Node> nodes, Dictionary<string, object?> vars, StringBuilder sb)
    {
        foreach (var node in nodes)
            switch (node)
            {
                case Text t: sb.Append(t.Value); break;
                case Output o: sb.Append(Str(Eval(o.Value, vars))); break;
                case Set s: vars[s.Name] = Eval(s.Value, vars); break;
                case If i:
                    var taken = i.Branches.FirstOrDefault(b => Truthy(Eval(b.Cond, vars))).Body ?? i.Else;
                    Exec(taken, vars, sb);
                    break;
                case For f:
                    var items = Eval(f.Items, vars) is IEnumerable<object?> list ? list.ToList() : throw new XmtfException("template: for over a non-list");
                    if (items.Count == 0) Exec(f.Else, vars, sb);
                    for (int k = 0; k < items.Count; k++)
                    {
                        // A loop body gets its own scope: Jinja's {% set %} inside a loop does not leak out.
                        var scope = new Dictionary<string, object?>(vars)
                        {
                            ["loop"] = new Dictionary<string, object?> { ["index"] = (long)k + 1, ["index0"] = (long)k, ["first"] = k == 0, ["last"] = k == items.Count - 1, ["length"] = (long)items.Count },
                        };
                        if (f.Targets.Length == 1) scope[f.Targets[0]] = items[k];
                        else
                        {
                            var parts = items[k] as IList<object?> ?? throw new XmtfException("template: cannot unpack a non-list");
                            for (int j = 0; j < f.Targets.Length; j++) scope[f.Targets[j]] = parts[j];
                        }
                        Exec(f.Body, scope, sb);
                    }
                    break;
            }
    }

    static object? Eval(Expr e, Dictionary<string, object?> vars) => e switch
    {
        Const c => c.Value,
        Name n => vars.TryGetValue(n.Id, out var v) ? v : Undefined.Value,
        ListExpr l => l.Items.Select(x => Eval(x, vars)).ToList(),
        Unary { Op: "not" } u => !Truthy(Eval(u.Operand, vars)),
        Unary u => u.Op == "-" ? Arith("-", 0L, Eval(u.Operand, vars)) : Eval(u.Operand, vars),
        Binary { Op: "and" } b => Eval(b.Left, vars) is var l && !Truthy(l) ? l : Eval(b.Right, vars),
        Binary { Op: "or" } b => Eval(b.Left, vars) is var l && Truthy(l) ? l : Eval(b.Right, vars),
        Binary b => BinaryOp(b.Op, Eval(b.Left, vars), Eval(b.Right, vars)),
        Item i => GetItem(Eval(i.Target, vars), Eval(i.Index, vars)),
        Slice s => GetSlice(Eval(s.Target, vars), s.Start is null ? null : Eval(s.Start, vars), s.Stop is null ? null : Eval(s.Stop, vars)),
        Attr a => Eval(a.Target, vars) is IReadOnlyDictionary<string, object?> d && d.TryGetValue(a.Name, out var v) ? v : Undefined.Value,
        Call { Callee: Attr a } c => Apply(a.Name, Eval(a.Target, vars), [.. c.Args.Select(x => Eval(x, vars))], isMethod: true),
        Filter f => Apply(f.Name, Eval(f.Value, vars), [.. f.Args.Select(x => Eval(x, vars))], isMethod: false),
        _ => throw new XmtfException("template: unsupported expression (only methods of values can be called)"),
    };

    /// <summary>Filters (<c>x|name(args)</c>) and string methods (<c>x.name(args)</c>) the templates use.</summary>
    static object? Apply(string name, object? x, object?[] a, bool isMethod) => (name, isMethod) switch
    {
        ("string", false) => Str(x),
        ("truncate", false) => Truncate(Str(x), a.Length > 0 ? (int)ToLong(a[0]) : 255),
        ("int", false) => ToInt(x),
        ("join", false) => string.Join(a.Length > 0 ? Str(a[0]) : "", AsList(x).Select(Str)),
        ("length", false) or ("count", false) => (long)(x is string s ? s.Length : AsList(x).Count),
        ("replace", _) => Str(x).Replace(Str(a[0]), Str(a[1])),
        ("lower", _) => Str(x).ToLowerInvariant(),
        ("upper", _) => Str(x).ToUpperInvariant(),
        ("trim", false) or ("strip", true) => PyStrip(Str(x)),
        ("split", true) => (a.Length == 0 || a[0] is null
            ? Str(x).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            : Str(x).Split(Str(a[0]))).Cast<object?>().ToList(),
        _ => throw new XmtfException($"template: unsupported {(isMethod ? "method" : "filter")} '{name}'"),
    };

    static IList<object?> AsList(object? x) => x as IList<object?> ?? throw new XmtfException($"template: expected a list, got {Repr(x)}");

    static object? BinaryOp(string op, object? l, object? r) => op switch
    {
        "==" => PyEquals(l, r),
        "!=" => !PyEquals(l, r),
        "<" => Order(l, r) < 0,
        ">" => Order(l, r) > 0,
        "<=" => Order(l, r) <= 0,
        ">=" => Order(l, r) >= 0,
        "in" => r is string hay ? hay.Contains(Str(l), StringComparison.Ordinal) : AsList(r).Any(x => PyEquals(x, l)),
        "~" => Str(l) + Str(r),
        "+" when l is string ls && r is string rs => ls + rs,
        "+" when l is IList<object?> ll && r is IList<object?> rl => ll.Concat(rl).ToList(),
        _ => Arith(op, l, r),
    };

    static object Arith(string op, object? l, object? r)
    {
        if (IsNumber(l) && IsNumber(r) && l is not double && r is not double && op != "/")
        {
            long x = ToLong(l), y = ToLong(r);
            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "//" => (long)Math.Floor((double)x / y),
                "%" => ((x % y) + y) % y,
                "**" => (long)Math.Pow(x, y),
                _ => throw new XmtfException($"template: unsupported operator '{op}'"),
            };
        }
        if (!IsNumber(l) || !IsNumber(r)) throw new XmtfException($"template: cannot apply '{op}' to {Repr(l)} and {Repr(r)}");
        double a = ToDouble(l), b = ToDouble(r);
        return op switch
        {
            "+" => a + b,
            "-" => a - b,
            "*" => a * b,
            "/" => a / b,
            "//" => Math.Floor(a / b),
            "%" => a - b * Math.Floor(a / b),
            "**" => Math.Pow(a, b),
            _ => throw new XmtfException($"template: unsupported operator '{op}'"),
        };
    }

    static object? GetItem(object? target, object? index)
    {
        if (target is IReadOnlyDictionary<string, object?> d) return d.TryGetValue(Str(index), out var v) ? v : Undefined.Value;
        if (!IsNumber(index) || index is double) throw new XmtfException($"template: bad index {Repr(index)}");
        long i = ToLong(index);
        if (target is string s) return s[(int)(i < 0 ? i + s.Length : i)].ToString();
        var list = AsList(target);
        if (i < 0) i += list.Count;
        if (i < 0 || i >= list.Count) throw new XmtfException($"template: index {ToLong(index)} out of range (list of {list.Count})");
        return list[(int)i];
    }

    static object GetSlice(object? target, object? start, object? stop)
    {
        int n = target is string str ? str.Length : AsList(target).Count;
        int Clamp(object? v, int dflt) => v is null ? dflt : (int)Math.Clamp(ToLong(v) < 0 ? ToLong(v) + n : ToLong(v), 0, n);
        int from = Clamp(start, 0), to = Math.Max(from, Clamp(stop, n));
        return target is string s ? s[from..to] : AsList(target).Skip(from).Take(to - from).ToList();
    }

    static bool IsNumber(object? x) => x is long or double or bool;
    static long ToLong(object? x) => x switch { long l => l, bool b => b ? 1 : 0, double d => (long)d, _ => throw new XmtfException($"template: expected a number, got {Repr(x)}") };
    static double ToDouble(object? x) => x is double d ? d : ToLong(x);

    /// <summary>Jinja's <c>int</c> filter: numbers truncate, strings parse (as float if need be), else 0.</summary>
    static long ToInt(object? x) => x switch
    {
        string s when long.TryParse(PyStrip(s), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
        string s when double.TryParse(PyStrip(s), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)d,
        long or double or bool => ToLong(x),
        _ => 0,
    };

    static bool PyEquals(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        if (a is IList<object?> la && b is IList<object?> lb) return la.Count == lb.Count && la.Zip(lb).All(p => PyEquals(p.First, p.Second));
        return Equals(a, b);
    }

    static int Order(object? a, object? b) =>
        IsNumber(a) && IsNumber(b) ? ToDouble(a).CompareTo(ToDouble(b))
        : a is string x && b is string y ? CodePointComparer.Instance.Compare(x, y)
        : throw new XmtfException($"template: cannot compare {Repr(a)} and {Repr(b)}");

    static bool Truthy(object? x) => x switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's <c>str()</c>.</summary>
    internal static string Str(object? x) => x switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(x),
    };

    /// <summary>Python's <c>repr()</c> (what <c>str()</c> of a list shows for its items).</summary>
    static string Repr(object? x) => x switch
    {
        null => "None",
        Undefined => "Undefined",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => double.IsInteger(d) && Math.Abs(d) < 1e16 ? d.ToString("F1", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        string s => s.Contains('\'') && !s.Contains('"')
            ? "\"" + s.Replace("\\", "\\\\").Replace("\n", "\\n") + "\""
            : "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'",
        IReadOnlyDictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}",
        IEnumerable<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        _ => x.ToString() ?? "",
    };

    /// <summary>Jinja2's <c>truncate</c> (killwords=False, end="...", leeway 5), counting code points as Python does.</summary>
    static string Truncate(string s, int length)
    {
        const string end = "...";
        var cps = s.EnumerateRunes().ToArray();
        if (cps.Length <= length + 5) return s;
        var head = string.Concat(cps.Take(length - end.Length).Select(r => r.ToString()));
        int space = head.LastIndexOf(' ');
        return (space >= 0 ? head[..space] : head) + end;
    }

    /// <summary>Python's <c>str.strip()</c>: also strips the separators U+001C..U+001F that .NET does not count as white space.</summary>
    internal static string PyStrip(string s)
    {
        static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';
        int i = 0, j = s.Length;
        while (i < j && IsSpace(s[i])) i++;
        while (j > i && IsSpace(s[j - 1])) j--;
        return s[i..j];
    }
}

/// <summary>Orders strings by Unicode code point, as Python (and Arrow's byte order) do; UTF-16 ordinal order
/// differs for characters outside the BMP.</summary>
public sealed class CodePointComparer : IComparer<string>
{
    public static readonly CodePointComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        var (a, b) = (x!.EnumerateRunes(), y!.EnumerateRunes());
        while (true)
        {
            bool hasA = a.MoveNext(), hasB = b.MoveNext();
            if (!hasA || !hasB) return hasA.CompareTo(hasB);
            int c = a.Current.Value.CompareTo(b.Current.Value);
            if (c != 0) return c;
        }
    }
}
