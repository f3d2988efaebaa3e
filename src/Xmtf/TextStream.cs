namespace Xmtf;

/// <summary>
/// Turns a growing list of generated ids into text pieces as they arrive: each piece is the text added since
/// the last one, so the pieces concatenate to <see cref="Pipeline.Decode"/> of all ids.
/// </summary>
public sealed class TextStream(Pipeline pipeline)
{
    readonly List<int> _ids = new();
    string _sent = "";

    /// <summary>The decoded text of all ids so far.</summary>
    public string Text { get; private set; } = "";

    /// <summary>Adds one id; returns the new text it completes ("" while a character is still incomplete).</summary>
    public string Add(int id)
    {
        _ids.Add(id);
        Text = pipeline.Decode(_ids.ToArray());
        // Hold back text that ends in an incomplete character (U+FFFD) until the next token completes it.
        if (Text.EndsWith('\uFFFD') || !Text.StartsWith(_sent, StringComparison.Ordinal)) return "";
        var piece = Text[_sent.Length..];
        _sent = Text;
        return piece;
    }

    /// <summary>The text not yet returned by <see cref="Add"/>, at the end of the generation.</summary>
    public string Flush()
    {
        if (!Text.StartsWith(_sent, StringComparison.Ordinal) || Text.Length == _sent.Length) return "";
        var piece = Text[_sent.Length..];
        _sent = Text;
        return piece;
    }
}
