using System.Globalization;
using System.Security;
using System.Text;

namespace Xmtf.Evaluation;

/// <summary>The paper's kind of figure as SVG: per language, one dot per template's accuracy and a bar at the median.</summary>
public static class AccuracyPlot
{
    static readonly string[] Colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    /// <summary>An SVG document for the report's results (y: accuracy 0–100 %, x: task/language).</summary>
    public static string Svg(EvalReport report)
    {
        const int left = 50, top = 20, plotHeight = 240, column = 70, legendLine = 16;
        var templates = report.Results.Select(r => r.Template).Distinct().ToList();
        int width = left + column * Math.Max(1, report.Summary.Count) + 20;
        int height = top + plotHeight + 40 + legendLine * templates.Count;
        double Y(double accuracy) => top + plotHeight * (1 - accuracy);
        var sb = new StringBuilder();
        void Add(FormattableString s) => sb.AppendLine(s.ToString(CultureInfo.InvariantCulture));

        Add($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        for (int pct = 0; pct <= 100; pct += 25)
        {
            Add($"<line x1=\"{left}\" y1=\"{Y(pct / 100.0):F1}\" x2=\"{width - 20}\" y2=\"{Y(pct / 100.0):F1}\" stroke=\"#ddd\"/>");
            Add($"<text x=\"{left - 6}\" y=\"{Y(pct / 100.0) + 4:F1}\" text-anchor=\"end\">{pct}%</text>");
        }
        for (int c = 0; c < report.Summary.Count; c++)
        {
            var s = report.Summary[c];
            double x = left + column * (c + 0.5);
            var points = report.Results.Where(r => r.Task == s.Task && r.Config == s.Config).ToList();
            foreach (var r in points)
            {
                int t = templates.IndexOf(r.Template);
                // Spread the dots sideways so equal accuracies stay visible.
                double dx = (t - (templates.Count - 1) / 2.0) * 4;
                Add($"<circle cx=\"{x + dx:F1}\" cy=\"{Y(r.Accuracy):F1}\" r=\"3.5\" fill=\"{Colors[t % Colors.Length]}\"><title>{Escape(r.Template)}: {r.Accuracy * 100:F1}%</title></circle>");
            }
            Add($"<line x1=\"{x - 22:F1}\" y1=\"{Y(s.Median):F1}\" x2=\"{x + 22:F1}\" y2=\"{Y(s.Median):F1}\" stroke=\"black\" stroke-width=\"2\"><title>median {s.Median * 100:F1}%</title></line>");
            Add($"<text x=\"{x:F1}\" y=\"{top + plotHeight + 16}\" text-anchor=\"middle\">{Escape(s.Task)} {Escape(s.Config)}</text>");
        }
        for (int t = 0; t < templates.Count; t++)
        {
            int y = top + plotHeight + 36 + legendLine * t;
            Add($"<circle cx=\"{left + 4}\" cy=\"{y - 4}\" r=\"3.5\" fill=\"{Colors[t % Colors.Length]}\"/>");
            Add($"<text x=\"{left + 14}\" y=\"{y}\">{Escape(templates[t])}</text>");
        }
        Add($"<text x=\"{width - 20}\" y=\"{top + plotHeight + 36}\" text-anchor=\"end\">— median over templates</text>");
        sb.AppendLine("</svg>");
        return sb.ToString();
    }

    static string Escape(string s) => SecurityElement.Escape(s);
}
