namespace Xmtf.Cli;

/// <summary>
/// A small, strict command-line parser: <c>--name value</c>, <c>--name=value</c>, <c>--flag</c> and
/// positionals. Options a command does not declare are an error, never silently ignored.
/// </summary>
public sealed class Args
{
    readonly Dictionary<string, List<string>> _values = new();
    readonly HashSet<string> _flags = new();
    public List<string> Positional { get; } = new();

    public static Args Parse(string command, string[] argv, IEnumerable<string> valueOptions, IEnumerable<string> flagOptions)
    {
        var values = valueOptions.ToHashSet();
        var flags = flagOptions.ToHashSet();
        var a = new Args();
        for (int i = 0; i < argv.Length; i++)
        {
            var s = argv[i];
            if (s.StartsWith("--") && s.Length > 2)
            {
                var name = s[2..];
                string? inline = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
                if (flags.Contains(name))
                {
                    if (inline is not null) throw new XmtfException($"option '--{name}' of 'xmtf {command}' takes no value");
                    a._flags.Add(name);
                }
                else if (values.Contains(name))
                {
                    var v = inline ?? (i + 1 < argv.Length ? argv[++i] : throw new XmtfException($"option '--{name}' of 'xmtf {command}' needs a value"));
                    if (!a._values.TryGetValue(name, out var list)) a._values[name] = list = new();
                    list.Add(v);
                }
                else throw new XmtfException($"unknown option '--{name}' for 'xmtf {command}' (see 'xmtf {command} --help')");
            }
            else if (s.StartsWith('-') && s.Length > 1 && !double.TryParse(s, out _))
                throw new XmtfException($"unknown option '{s}' for 'xmtf {command}' (see 'xmtf {command} --help')");
            else a.Positional.Add(s);
        }
        return a;
    }

    public bool Flag(string name) => _flags.Contains(name);
    public string? Get(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;
    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var l) ? l : [];
    public string Require(string name, string command) => Get(name) ?? throw new XmtfException($"'xmtf {command}' needs --{name}");

    public int? GetInt(string name) => Get(name) is { } s ? (int.TryParse(s, out var v) ? v : throw new XmtfException($"--{name} expects an integer, got '{s}'")) : null;
    public double? GetDouble(string name) => Get(name) is { } s
        ? (double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : throw new XmtfException($"--{name} expects a number, got '{s}'"))
        : null;
}
