using Xmtf.Evaluation;

namespace Xmtf.Tests.Evaluation;

/// <summary>The Jinja features the fixtures do not reach (expected outputs are Jinja2 3.1's).</summary>
public class JinjaTests
{
    static readonly Dictionary<string, object?> Vars = new()
    {
        ["s"] = "Hello World", ["n"] = 2L, ["xs"] = new List<object?> { "a", "b", "c" }, ["answer"] = "2", ["none"] = null,
    };

    [Theory]
    [InlineData("{{ xs[answer|int - 1] }}", "b")]
    [InlineData("{{ xs[-1] }}{{ xs[1:] }}{{ s[:5] }}", "c['b', 'c']Hello")]
    [InlineData("{{ s.lower() ~ n }}|{{ s.split(\" \")[1] + \"!\" }}", "hello world2|World!")]
    [InlineData("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}", "1a, 2b, 3c")]
    [InlineData("{% set y = n * 3 %}{{ y }} {{ y // 4 }} {{ 7 / 2 }} {{ -n + 0.5 }}", "6 1 3.5 -1.5")]
    [InlineData("{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}", "two")]
    [InlineData("a  {%- if true -%}  b  {%- endif %}  c\n", "ab  c")]
    [InlineData("{{ xs | join(\"-\") | upper }} {{ xs | length }} {{ 'b' in xs }} {{ \"x\" not in s }} {{ none }} {{ missing }}.", "A-B-C 3 True True None .")]
    [InlineData("{# comment #}{{ s | replace(\"World\", \"there\") }}{{ 'it''s' }}", "Hello thereits")]
    public void Renders(string template, string expected) => Assert.Equal(expected, JinjaTemplate.Parse(template).Render(Vars));

    [Fact]
    public void TruncateKeepsWholeWordsAfterLeeway()
    {
        var t = JinjaTemplate.Parse("{{ s | truncate(6) }}|{{ s | truncate(5) }}|{{ \"Hello World again\" | truncate(10) }}");
        Assert.Equal("Hello World|He...|Hello...", t.Render(Vars));
    }

    [Theory]
    [InlineData("{% if x %}")]
    [InlineData("{{ x ")]
    [InlineData("{{ x | nosuchfilter }}")]
    public void ErrorsAreUserErrors(string template) =>
        Assert.Throws<XmtfException>(() => JinjaTemplate.Parse(template).Render(Vars));
}
